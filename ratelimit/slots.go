package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Slots bound how many holders a key has at once: upload sessions per
// repository. A slot is held until released or until its ttl passes, so a
// holder that vanishes (a client that never finishes its upload, a
// replica that crashes) frees its slot by itself and the count heals.
type Slots interface {
	// Acquire takes a slot of key for holder, unless limit slots are held;
	// then the decision is denied, with RetryAfter the time until the
	// first slot expires. Acquiring a slot already held renews it.
	Acquire(ctx context.Context, key, holder string, limit int, ttl time.Duration) (Decision, error)
	// Release frees holder's slot; releasing one not held is no error.
	Release(ctx context.Context, key, holder string) error
}

// ErrInvalidSlots: a limit or ttl that is not positive.
var ErrInvalidSlots = errors.New("ratelimit: slot limit and ttl must be positive")

func checkSlots(limit int, ttl time.Duration) error {
	if limit < 1 || ttl <= 0 {
		return fmt.Errorf("%w (got limit %d, ttl %s)", ErrInvalidSlots, limit, ttl)
	}
	return nil
}

// MemorySlots are the in-process Slots, for one replica. Memory is bounded
// by the holders alive: expired slots are dropped whenever their key is
// used, and a sweep drops keys nobody has touched once per ttl.
type MemorySlots struct {
	mu        sync.Mutex
	keys      map[string]map[string]time.Time // key -> holder -> expiry
	now       func() time.Time
	lastSweep time.Time
}

var _ Slots = (*MemorySlots)(nil)

func NewMemorySlots() *MemorySlots {
	return &MemorySlots{keys: map[string]map[string]time.Time{}, now: time.Now}
}

// Acquire implements Slots.
func (m *MemorySlots) Acquire(_ context.Context, key, holder string, limit int, ttl time.Duration) (Decision, error) {
	if err := checkSlots(limit, ttl); err != nil {
		return Decision{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.lastSweep) >= ttl {
		m.sweep(now)
	}
	held := m.keys[key]
	first := expireHolders(held, now)
	if _, ok := held[holder]; !ok && len(held) >= limit {
		return Decision{RetryAfter: first.Sub(now)}, nil
	}
	if held == nil {
		held = map[string]time.Time{}
		m.keys[key] = held
	}
	held[holder] = now.Add(ttl)
	return Decision{Allowed: true, Remaining: limit - len(held)}, nil
}

// Release implements Slots.
func (m *MemorySlots) Release(_ context.Context, key, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if held := m.keys[key]; held != nil {
		delete(held, holder)
		if len(held) == 0 {
			delete(m.keys, key)
		}
	}
	return nil
}

// Len is the number of keys tracked, expired or not.
func (m *MemorySlots) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// expireHolders drops the expired slots and returns the earliest expiry
// of those left.
func expireHolders(held map[string]time.Time, now time.Time) time.Time {
	var first time.Time
	for h, exp := range held {
		if !exp.After(now) {
			delete(held, h)
			continue
		}
		if first.IsZero() || exp.Before(first) {
			first = exp
		}
	}
	return first
}

func (m *MemorySlots) sweep(now time.Time) {
	m.lastSweep = now
	for k, held := range m.keys {
		if expireHolders(held, now); len(held) == 0 {
			delete(m.keys, k)
		}
	}
}
