package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
)

const (
	// readyCacheFor is how long one probe of the backends answers every
	// /readyz, so that frequent probes from many sources cannot load them.
	readyCacheFor = time.Second
	// probeTimeout bounds one probe of a backend.
	probeTimeout = 3 * time.Second
)

// readyState is one probe's verdict. The body never carries error details
// (probes are often unauthenticated); the log says why.
type readyState struct {
	status int
	body   string
}

// readyChecker answers /readyz: the object store answers a cheap probe and
// is not full, and the process is not draining; a session store (Redis)
// that does not answer is reported as degraded, not unready. Backend results are cached for readyCacheFor; draining is not,
// so a SIGTERM fails the very next probe.
type readyChecker struct {
	reg    *registry.Registry
	store  storage.Driver
	locks  locking.Store
	logger *slog.Logger
	ttl    time.Duration

	draining atomic.Bool

	mu      sync.Mutex // held while probing: concurrent probes share one
	last    readyState
	checked time.Time
}

func newReadyChecker(reg *registry.Registry, d storage.Driver, s locking.Store, logger *slog.Logger, ttl time.Duration) *readyChecker {
	return &readyChecker{reg: reg, store: d, locks: s, logger: logger, ttl: ttl}
}

// readiness is the uncached /readyz handler over the given backends.
func readiness(reg *registry.Registry, d storage.Driver, s locking.Store, logger *slog.Logger) http.Handler {
	return newReadyChecker(reg, d, s, logger, 0)
}

// drain makes every later probe fail: the replica is shutting down.
func (c *readyChecker) drain() { c.draining.Store(true) }

func (c *readyChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if c.draining.Load() {
		http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		return
	}
	st := c.state(r.Context())
	if st.status != http.StatusOK {
		http.Error(w, st.body, st.status)
		return
	}
	fmt.Fprintln(w, st.body)
}

// state returns the cached verdict, probing when it is older than ttl.
func (c *readyChecker) state(ctx context.Context) readyState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && !c.checked.IsZero() && time.Since(c.checked) < c.ttl {
		return c.last
	}
	// A probe answers every waiting request: do not let the one request
	// that started it cancel it by going away.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	defer cancel()
	c.last, c.checked = c.probe(pctx), time.Now()
	return c.last
}

func (c *readyChecker) probe(ctx context.Context) readyState {
	if _, err := c.store.Stat(ctx, "health/readiness-probe"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		c.logger.Warn("not ready: storage probe failed", "err", err)
		return readyState{http.StatusServiceUnavailable, "not ready: storage backend unavailable"}
	}
	if c.reg.StorageFull() {
		return readyState{http.StatusServiceUnavailable, "not ready: storage full (a write failed for lack of space)"}
	}
	if _, err := c.locks.Get(ctx, "readiness-probe"); err != nil && !errors.Is(err, locking.ErrNotFound) {
		// Reported, not failed: every replica shares the session store, so
		// failing readiness would take the whole fleet out of rotation and
		// stop pulls too, which work without it (pushes answer 503 with
		// Retry-After meanwhile).
		c.logger.Warn("session store probe failed: pushes fail until it is back, pulls go on", "err", err)
		return readyState{http.StatusOK, "degraded: session store (redis) unavailable; pushes answer 503, pulls work"}
	}
	return readyState{http.StatusOK, "ok"}
}

// startupProbe lists one key of the store before serving. A store that
// refuses us for good (bad credentials, a missing bucket: ErrMisconfigured)
// stops the start with the driver's explanation; any other failure may be
// transient (the store is still starting) and is only a warning: /readyz
// keeps the replica out of rotation until the store answers.
//
// It lists rather than stats: S3 answers a HEAD in a missing bucket with a
// bare 404, indistinguishable from a missing key.
func startupProbe(ctx context.Context, d storage.Driver, logger *slog.Logger) error {
	pctx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
	defer cancel()
	_, err := d.List(pctx, "health/", "", 1)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrMisconfigured):
		return fmt.Errorf("storage %s refuses this configuration: %w", d.Name(), err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	logger.Warn("storage did not answer the startup probe; serving anyway, /readyz reports it until it does", "driver", d.Name(), "err", err)
	return nil
}
