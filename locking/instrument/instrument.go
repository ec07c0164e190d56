// Package instrument wraps a locking.Store with Prometheus metrics: the
// latency of every operation and its failures, by backend and operation.
//
// Answers that are part of the protocol are not failures: a lease held by
// another holder or lost, a session not found or already existing, a
// digest being deleted, and a caller that went away (context.Canceled).
// A Redis that cannot be reached, a timeout or an unexpected error is.
//
// The wrapper forwards Now (the store's shared clock, which GC and the
// conformance suite look for by type assertion) exactly when the wrapped
// store has it.
package instrument

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/locking"
)

// Metrics are the locking series; one set serves every wrapped store.
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewMetrics creates the series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stratus_locking_operation_duration_seconds",
			Help:    "Latency of lease, pin and session operations on the shared store (Redis or in-process).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"backend", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_locking_errors_total",
			Help: "Locking operations that failed (protocol answers such as held, lost or not found excluded).",
		}, []string{"backend", "op"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("locking metrics: %w", err)
		}
	}
	return m, nil
}

// clock is the optional shared-clock capability of a store.
type clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// Wrap returns s instrumented with m under the backend label ("redis",
// "memory").
func (m *Metrics) Wrap(s locking.Store, backend string) locking.Store {
	w := &store{next: s, m: m, backend: backend}
	if c, ok := s.(clock); ok {
		return &clockStore{store: w, clock: c}
	}
	return w
}

// Failure reports whether err counts as a failed operation.
func Failure(err error) bool {
	if err == nil {
		return false
	}
	for _, answer := range []error{locking.ErrHeld, locking.ErrLost, locking.ErrNotFound,
		locking.ErrExists, locking.ErrDeleting, context.Canceled} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}

func (m *Metrics) observe(backend, op string, start time.Time, err error) {
	m.duration.WithLabelValues(backend, op).Observe(time.Since(start).Seconds())
	if Failure(err) {
		m.errors.WithLabelValues(backend, op).Inc()
	}
}

type store struct {
	next    locking.Store
	m       *Metrics
	backend string
}

func (s *store) Acquire(ctx context.Context, key string, ttl time.Duration) (locking.Lease, error) {
	start := time.Now()
	l, err := s.next.Acquire(ctx, key, ttl)
	s.m.observe(s.backend, "lease_acquire", start, err)
	return l, err
}

func (s *store) Renew(ctx context.Context, l locking.Lease, ttl time.Duration) (locking.Lease, error) {
	start := time.Now()
	nl, err := s.next.Renew(ctx, l, ttl)
	s.m.observe(s.backend, "lease_renew", start, err)
	return nl, err
}

func (s *store) Release(ctx context.Context, l locking.Lease) error {
	start := time.Now()
	err := s.next.Release(ctx, l)
	s.m.observe(s.backend, "lease_release", start, err)
	return err
}

func (s *store) Pin(ctx context.Context, digest string) error {
	start := time.Now()
	err := s.next.Pin(ctx, digest)
	s.m.observe(s.backend, "pin", start, err)
	return err
}

func (s *store) PinAll(ctx context.Context, keys ...string) error {
	start := time.Now()
	err := s.next.PinAll(ctx, keys...)
	s.m.observe(s.backend, "pin_all", start, err)
	return err
}

func (s *store) Claim(ctx context.Context, digest string, notPinnedSince time.Time, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.next.Claim(ctx, digest, notPinnedSince, ttl)
	s.m.observe(s.backend, "claim", start, err)
	return ok, err
}

func (s *store) Unclaim(ctx context.Context, digest string) error {
	start := time.Now()
	err := s.next.Unclaim(ctx, digest)
	s.m.observe(s.backend, "unclaim", start, err)
	return err
}

func (s *store) ClaimMany(ctx context.Context, digests []string, notPinnedSince time.Time, ttl time.Duration) ([]bool, error) {
	start := time.Now()
	claimed, err := s.next.ClaimMany(ctx, digests, notPinnedSince, ttl)
	s.m.observe(s.backend, "claim_many", start, err)
	return claimed, err
}

func (s *store) UnclaimMany(ctx context.Context, digests []string) error {
	start := time.Now()
	err := s.next.UnclaimMany(ctx, digests)
	s.m.observe(s.backend, "unclaim_many", start, err)
	return err
}

func (s *store) Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.next.Create(ctx, id, rec, ttl)
	s.m.observe(s.backend, "session_create", start, err)
	return err
}

func (s *store) Get(ctx context.Context, id string) ([]byte, error) {
	start := time.Now()
	rec, err := s.next.Get(ctx, id)
	s.m.observe(s.backend, "session_get", start, err)
	return rec, err
}

func (s *store) Update(ctx context.Context, l locking.Lease, id string, rec []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.next.Update(ctx, l, id, rec, ttl)
	s.m.observe(s.backend, "session_update", start, err)
	return err
}

func (s *store) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := s.next.Delete(ctx, id)
	s.m.observe(s.backend, "session_delete", start, err)
	return err
}

func (s *store) Close() error { return s.next.Close() }

// clockStore is a store whose backend tells the shared time.
type clockStore struct {
	*store
	clock clock
}

func (s *clockStore) Now(ctx context.Context) (time.Time, error) {
	start := time.Now()
	t, err := s.clock.Now(ctx)
	s.m.observe(s.backend, "now", start, err)
	return t, err
}
