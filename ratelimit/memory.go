package ratelimit

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Memory limiter tracks (about 100 bytes
// each).
const DefaultMaxKeys = 100_000

// Memory is the in-process Limiter, for one replica.
type Memory struct {
	mu      sync.Mutex
	tat     map[string]time.Time
	maxKeys int
	now     func() time.Time
}

var _ Limiter = (*Memory)(nil)

// NewMemory tracks at most maxKeys keys (0: DefaultMaxKeys).
func NewMemory(maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{tat: map[string]time.Time{}, maxKeys: maxKeys, now: time.Now}
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, rate Rate) (Decision, error) {
	interval, err := rate.interval()
	if err != nil {
		return Decision{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	tat, known := m.tat[key]
	d, next := gcra(now, tat, interval, rate.Burst)
	if d.Allowed {
		if !known && len(m.tat) >= m.maxKeys {
			m.evict(now)
		}
		m.tat[key] = next
	}
	return d, nil
}

// Len is the number of keys tracked.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}

// evict makes room: first the keys whose TAT has passed (they hold a full
// burst, so forgetting them changes no decision), then, if the map is
// still full, arbitrary keys down to 90% of the bound, so that a flood of
// distinct clients costs one sweep per tenth of the bound rather than one
// per request. An arbitrarily evicted key starts over with a full burst:
// under that flood the limiter errs towards allowing, and memory stays
// bounded.
func (m *Memory) evict(now time.Time) {
	for k, tat := range m.tat {
		if !tat.After(now) {
			delete(m.tat, k)
		}
	}
	target := m.maxKeys - max(1, m.maxKeys/10)
	for k := range m.tat {
		if len(m.tat) <= target {
			break
		}
		delete(m.tat, k)
	}
}
