// Package memory is the in-process locking.Store: leases, GC pins and upload
// sessions kept in one process's memory. It is correct for exactly one
// replica; a fleet shares state through locking/redis instead.
//
// Every operation takes one mutex for a few map operations and never blocks
// on anything else, so contention costs microseconds.
package memory

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// Defaults for the options.
const (
	// DefaultPinTTL is how long a pin is remembered. A claim looks at pins
	// since notPinnedSince (GC mark start minus grace), so this must exceed
	// the grace period plus the longest GC mark phase.
	DefaultPinTTL = 24 * time.Hour
	// DefaultSweepInterval bounds how long expired entries linger when the
	// keys that hold them are never touched again.
	DefaultSweepInterval = time.Minute
)

// errClosed is returned after Close; it counts as unavailable, which the
// registry answers with a retryable 503 while it shuts down.
var errClosed = fmt.Errorf("%w: store closed", locking.ErrUnavailable)

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now, so tests can move time instead of sleeping.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithPinTTL sets how long a pin is remembered (see DefaultPinTTL);
// non-positive means the default.
func WithPinTTL(d time.Duration) Option { return func(s *Store) { s.pinTTL = d } }

// WithSweepInterval sets how often expired entries are purged;
// non-positive means the default.
func WithSweepInterval(d time.Duration) Option { return func(s *Store) { s.sweepInterval = d } }

// Store implements locking.Store in memory. The zero value is not usable;
// call New.
type Store struct {
	now           func() time.Time
	pinTTL        time.Duration
	sweepInterval time.Duration

	mu        sync.Mutex
	closed    bool
	lastSweep time.Time
	// lastToken is one counter for every key. A per-key counter would have
	// to outlive its lease to stay monotonic, so it would keep one entry per
	// upload ID ever seen; a shared counter is strictly increasing per key
	// as well and costs nothing to keep.
	lastToken uint64
	leases    map[string]leaseEntry
	pins      map[string]pinEntry
	sessions  map[string]sessionEntry
	// activity is a ring of per-second request counts (activity.go).
	activity [activitySlots]activityBucket
}

type leaseEntry struct {
	holder  string
	token   uint64
	expires time.Time
}

// pinEntry holds both halves of the pin protocol for one digest, so that
// Pin and Claim read and write them under one lock.
type pinEntry struct {
	lastref       time.Time // zero: never pinned (or forgotten)
	lastrefExpiry time.Time
	deletingUntil time.Time // zero or past: not claimed
}

type sessionEntry struct {
	rec     []byte
	expires time.Time
}

var _ locking.Store = (*Store)(nil)

// New returns an empty store. It starts no goroutine: expired entries are
// dropped when their key is touched and by a sweep that runs inside an
// operation at most once per sweep interval.
func New(opts ...Option) *Store {
	s := &Store{
		now:           time.Now,
		pinTTL:        DefaultPinTTL,
		sweepInterval: DefaultSweepInterval,
		leases:        map[string]leaseEntry{},
		pins:          map[string]pinEntry{},
		sessions:      map[string]sessionEntry{},
	}
	for _, o := range opts {
		o(s)
	}
	// A zero interval would sweep on every call, a zero pin ttl would
	// forget pins at once: neither is a setting anyone means.
	if s.sweepInterval <= 0 {
		s.sweepInterval = DefaultSweepInterval
	}
	if s.pinTTL <= 0 {
		s.pinTTL = DefaultPinTTL
	}
	s.lastSweep = s.now()
	return s
}

// lock takes the mutex for one operation and returns the time it runs at.
// On error the mutex is not held.
func (s *Store) lock(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return time.Time{}, errClosed
	}
	now := s.now()
	if now.Sub(s.lastSweep) >= s.sweepInterval {
		s.sweep(now)
	}
	return now, nil
}

// sweep drops every expired entry. It is O(entries) once per interval, so
// amortised over the operations in between it is O(1) each.
func (s *Store) sweep(now time.Time) {
	s.lastSweep = now
	for k, l := range s.leases {
		if !now.Before(l.expires) {
			delete(s.leases, k)
		}
	}
	for k, p := range s.pins {
		if p.dead(now) {
			delete(s.pins, k)
		}
	}
	for k, e := range s.sessions {
		if !now.Before(e.expires) {
			delete(s.sessions, k)
		}
	}
}

// Now reports the store's clock: the time Pin records and the time a GC
// should derive notPinnedSince from, so both sides of the comparison come
// from one clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	return s.now(), nil
}

// Close makes every later call fail with locking.ErrUnavailable and frees
// the maps. There is nothing running to stop.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.leases, s.pins, s.sessions = nil, nil, nil
	return nil
}

// --- leases ---

// Acquire implements locking.Leases.
func (s *Store) Acquire(ctx context.Context, key string, ttl time.Duration) (locking.Lease, error) {
	if err := errors.Join(locking.CheckKey("lease key", key), locking.CheckTTL(ttl)); err != nil {
		return locking.Lease{}, err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return locking.Lease{}, err
	}
	defer s.mu.Unlock()
	if cur, ok := s.leases[key]; ok && now.Before(cur.expires) {
		return locking.Lease{}, locking.ErrHeld
	}
	s.lastToken++
	e := leaseEntry{holder: rand.Text(), token: s.lastToken, expires: now.Add(ttl)}
	s.leases[key] = e
	return locking.Lease{Key: key, Token: e.token, Holder: e.holder, Expires: e.expires}, nil
}

// current reports whether l is the live lease on its key. Caller holds mu.
func (s *Store) current(now time.Time, l locking.Lease) bool {
	cur, ok := s.leases[l.Key]
	return ok && now.Before(cur.expires) && cur.holder == l.Holder && cur.token == l.Token
}

// Renew implements locking.Leases.
func (s *Store) Renew(ctx context.Context, l locking.Lease, ttl time.Duration) (locking.Lease, error) {
	if err := locking.CheckTTL(ttl); err != nil {
		return locking.Lease{}, err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return locking.Lease{}, err
	}
	defer s.mu.Unlock()
	if !s.current(now, l) {
		return locking.Lease{}, locking.ErrLost
	}
	l.Expires = now.Add(ttl)
	s.leases[l.Key] = leaseEntry{holder: l.Holder, token: l.Token, expires: l.Expires}
	return l, nil
}

// Release implements locking.Leases.
func (s *Store) Release(ctx context.Context, l locking.Lease) error {
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.current(now, l) {
		return locking.ErrLost
	}
	delete(s.leases, l.Key)
	return nil
}

// --- pins ---

func (p pinEntry) claimed(now time.Time) bool { return now.Before(p.deletingUntil) }

func (p pinEntry) pinned(now time.Time) bool {
	return !p.lastref.IsZero() && now.Before(p.lastrefExpiry)
}

func (p pinEntry) dead(now time.Time) bool { return !p.claimed(now) && !p.pinned(now) }

// Pin implements locking.Pins.
func (s *Store) Pin(ctx context.Context, digest string) error {
	if err := locking.CheckKey("digest", digest); err != nil {
		return err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	p := s.pins[digest]
	if p.claimed(now) {
		return locking.ErrDeleting
	}
	p.lastref, p.lastrefExpiry = now, now.Add(s.pinTTL)
	s.pins[digest] = p
	return nil
}

// PinAll implements locking.Pins: every key under one hold of the lock,
// so the group costs one acquisition.
func (s *Store) PinAll(ctx context.Context, keys ...string) error {
	if err := locking.CheckKeys("digest", keys); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	var refused []string
	for _, k := range keys {
		p := s.pins[k]
		if p.claimed(now) {
			refused = append(refused, k)
			continue
		}
		p.lastref, p.lastrefExpiry = now, now.Add(s.pinTTL)
		s.pins[k] = p
	}
	if refused != nil {
		return &locking.RefusedError{Keys: refused}
	}
	return nil
}

// Claim implements locking.Pins. A digest that is already claimed is not
// claimed again (false): the earlier claimer may still be deleting it, and
// the claim's ttl hands it back if that claimer died.
func (s *Store) Claim(ctx context.Context, digest string, notPinnedSince time.Time, ttl time.Duration) (bool, error) {
	claimed, err := s.ClaimMany(ctx, []string{digest}, notPinnedSince, ttl)
	if err != nil {
		return false, err
	}
	return claimed[0], nil
}

// ClaimMany implements locking.Pins: the whole batch under one hold of the
// mutex, so each claim is atomic against pins as Claim's is.
func (s *Store) ClaimMany(ctx context.Context, digests []string, notPinnedSince time.Time, ttl time.Duration) ([]bool, error) {
	if err := errors.Join(locking.CheckKeys("digest", digests), locking.CheckTTL(ttl)); err != nil {
		return nil, err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	claimed := make([]bool, len(digests))
	for i, d := range digests {
		p := s.pins[d]
		if p.claimed(now) || (p.pinned(now) && !p.lastref.Before(notPinnedSince)) {
			continue
		}
		p.deletingUntil = now.Add(ttl)
		s.pins[d] = p
		claimed[i] = true
	}
	return claimed, nil
}

// Unclaim implements locking.Pins.
func (s *Store) Unclaim(ctx context.Context, digest string) error {
	return s.UnclaimMany(ctx, []string{digest})
}

// UnclaimMany implements locking.Pins.
func (s *Store) UnclaimMany(ctx context.Context, digests []string) error {
	if err := locking.CheckKeys("digest", digests); err != nil {
		return err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, d := range digests {
		p, ok := s.pins[d]
		if !ok {
			continue
		}
		p.deletingUntil = time.Time{}
		if p.dead(now) {
			delete(s.pins, d)
			continue
		}
		s.pins[d] = p
	}
	return nil
}

// --- sessions ---

// Create implements locking.Sessions.
func (s *Store) Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error {
	if err := errors.Join(locking.CheckKey("session id", id), locking.CheckTTL(ttl)); err != nil {
		return err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if e, ok := s.sessions[id]; ok && now.Before(e.expires) {
		return locking.ErrExists
	}
	// Copied so that the caller reusing its buffer cannot change the record.
	s.sessions[id] = sessionEntry{rec: clone(rec), expires: now.Add(ttl)}
	return nil
}

// Get implements locking.Sessions.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	now, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, ok := s.sessions[id]
	if !ok || !now.Before(e.expires) {
		delete(s.sessions, id)
		return nil, locking.ErrNotFound
	}
	return clone(e.rec), nil
}

// Update implements locking.Sessions. The lease is checked first: a writer
// that lost its lease learns that (ErrLost) whether or not the record is
// still there.
func (s *Store) Update(ctx context.Context, l locking.Lease, id string, rec []byte, ttl time.Duration) error {
	if err := errors.Join(locking.CheckKey("session id", id), locking.CheckTTL(ttl)); err != nil {
		return err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if l.Key != locking.SessionLeaseKey(id) || !s.current(now, l) {
		return locking.ErrLost
	}
	if e, ok := s.sessions[id]; !ok || !now.Before(e.expires) {
		delete(s.sessions, id)
		return locking.ErrNotFound
	}
	s.sessions[id] = sessionEntry{rec: clone(rec), expires: now.Add(ttl)}
	return nil
}

// Delete implements locking.Sessions.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// clone copies b, keeping an empty record non-nil so Get never confuses
// "empty" with "absent".
func clone(b []byte) []byte { return append([]byte{}, b...) }
