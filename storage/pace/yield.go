package pace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Signal is the fleet's recent request count (locking.Activity's reading
// half): any request served in the window means the registry is busy.
type Signal interface {
	RecentActivity(ctx context.Context, window time.Duration) (int64, error)
}

// Clock is the time a Yielder runs on; tests inject one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Defaults for YieldConfig.
const (
	// DefaultWindow is how far back a served request makes the registry
	// busy: long enough to bridge the gaps between one client's requests
	// (a push is a HEAD, a POST, PATCHes and a PUT), short enough that GC
	// speeds up within seconds of the traffic stopping.
	DefaultWindow = 2 * time.Second
	// DefaultRefresh is how often the signal is read: one Redis call a
	// second per GC process, whatever the pass does.
	DefaultRefresh = time.Second
	// DefaultReadTimeout bounds one read of the signal, so a Redis that
	// hangs delays a pass by at most this (and counts as busy).
	DefaultReadTimeout = 500 * time.Millisecond
)

// YieldConfig configures a Yielder.
type YieldConfig struct {
	// Share is the fraction of one request stream's time GC may use while
	// the registry is busy, in (0, 1]: each request is followed by a pause
	// of its own duration × (1-Share)/Share. 1 still keeps GC to one
	// request in flight while busy, without pauses.
	Share float64
	// Window, Refresh and ReadTimeout: 0 means the default above.
	Window      time.Duration
	Refresh     time.Duration
	ReadTimeout time.Duration
	// Clock: nil is the system clock.
	Clock Clock
	// Metrics: nil records nothing.
	Metrics *YieldMetrics
	// Logger: nil discards.
	Logger *slog.Logger
}

// Yielder is a Gate that lets GC run at full speed while the registry is
// idle and, while it serves (on this replica or any other), admits one GC
// request at a time followed by a pause proportional to how long that
// request took. It paces by time, not by count, because the cost of GC's
// requests spans orders of magnitude (a page of 1,000 keys against a
// 100-byte read), and a store's time is what serving requests compete for.
type Yielder struct {
	sig Signal
	cfg YieldConfig

	mu sync.Mutex
	// busy is the last reading of the signal, taken at readAt; reading is
	// set while one caller reads it, so the others use the cached value.
	busy    bool
	readAt  time.Time
	reading bool
	// inFlight: the one busy-mode request is in the store. notBefore: the
	// next one may not start before this (the last one's pause).
	inFlight  bool
	notBefore time.Time
	// changed is closed (and replaced) whenever a waiter may proceed.
	changed chan struct{}
}

var _ Gate = (*Yielder)(nil)

// NewYielder returns a Yielder reading sig.
func NewYielder(sig Signal, cfg YieldConfig) (*Yielder, error) {
	if sig == nil {
		return nil, errors.New("pace: a yielder needs an activity signal")
	}
	if !(cfg.Share > 0 && cfg.Share <= 1) { // also refuses NaN
		return nil, fmt.Errorf("pace: busy share %g is outside (0, 1]", cfg.Share)
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Yielder{sig: sig, cfg: cfg, changed: make(chan struct{})}, nil
}

// Enter implements Gate. While idle it returns at once. While busy it
// waits until no other GC request is in flight and the last one's pause
// is over, re-reading the signal at least every Refresh, so a wait ends
// as soon as the traffic has stopped.
func (y *Yielder) Enter(ctx context.Context) (func(), error) {
	var waited time.Duration
	for {
		busy := y.isBusy(ctx)
		y.mu.Lock()
		now := y.cfg.Clock.Now()
		if !busy {
			y.mu.Unlock()
			y.cfg.Metrics.waited(waited)
			return func() {}, nil
		}
		if !y.inFlight && !now.Before(y.notBefore) {
			y.inFlight = true
			y.mu.Unlock()
			y.cfg.Metrics.waited(waited)
			y.cfg.Metrics.admitted()
			return y.doneFunc(now), nil
		}
		wait := y.cfg.Refresh
		if !y.inFlight {
			wait = min(wait, y.notBefore.Sub(now))
		}
		changed := y.changed
		y.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-y.cfg.Clock.After(wait):
		}
		waited += y.cfg.Clock.Now().Sub(now)
	}
}

// doneFunc ends the busy-mode request that started at start and sets the
// pause that keeps GC's time at Share of the stream.
func (y *Yielder) doneFunc(start time.Time) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			y.mu.Lock()
			defer y.mu.Unlock()
			end := y.cfg.Clock.Now()
			took := end.Sub(start)
			pause := time.Duration(float64(took) * (1 - y.cfg.Share) / y.cfg.Share)
			y.notBefore = end.Add(pause)
			y.inFlight = false
			close(y.changed)
			y.changed = make(chan struct{})
		})
	}
}

// isBusy returns the signal's reading, read again when it is older than
// Refresh. An unreadable signal counts as busy: yielding costs a pass
// time, not yielding could cost the serving traffic its throughput. A
// read cut short by the caller's own context changes nothing.
func (y *Yielder) isBusy(ctx context.Context) bool {
	y.mu.Lock()
	if y.reading || y.cfg.Clock.Now().Sub(y.readAt) < y.cfg.Refresh && !y.readAt.IsZero() {
		b := y.busy
		y.mu.Unlock()
		return b
	}
	y.reading = true
	y.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, y.cfg.ReadTimeout)
	n, err := y.sig.RecentActivity(rctx, y.cfg.Window)
	cancel()

	y.mu.Lock()
	defer y.mu.Unlock()
	y.reading = false
	if err != nil && ctx.Err() != nil {
		return y.busy
	}
	busy := err != nil || n > 0
	if err != nil {
		y.cfg.Metrics.readFailed()
		if !y.busy || y.readAt.IsZero() {
			y.cfg.Logger.Warn("gc: cannot read the activity signal; yielding as if the registry were busy", "err", err)
		}
	}
	if busy != y.busy {
		y.cfg.Logger.Debug("gc: activity changed", "busy", busy, "recent_requests", n)
	}
	y.busy, y.readAt = busy, y.cfg.Clock.Now()
	y.cfg.Metrics.setYielding(busy)
	if !busy {
		// Waiters should not sit out a pause the traffic no longer needs.
		close(y.changed)
		y.changed = make(chan struct{})
	}
	return busy
}

// YieldMetrics are a Yielder's series.
type YieldMetrics struct {
	yielding   prometheus.Gauge
	admits     prometheus.Counter
	waits      prometheus.Counter
	waitSecs   prometheus.Counter
	readErrors prometheus.Counter
}

// NewYieldMetrics registers the series on reg.
func NewYieldMetrics(reg prometheus.Registerer) (*YieldMetrics, error) {
	m := &YieldMetrics{
		yielding: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stratus_gc_yielding",
			Help: "1 while garbage collection yields to serving traffic (the fleet served requests in the last seconds), else 0."}),
		admits: prometheus.NewCounter(prometheus.CounterOpts{Name: "stratus_gc_yield_requests_total",
			Help: "GC object-store requests made one at a time, with pauses, while yielding."}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{Name: "stratus_gc_yield_waits_total",
			Help: "GC object-store requests that waited for a pause or for another GC request to end."}),
		waitSecs: prometheus.NewCounter(prometheus.CounterOpts{Name: "stratus_gc_yield_wait_seconds_total",
			Help: "Time GC object-store requests waited while yielding."}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "stratus_gc_activity_read_errors_total",
			Help: "Reads of the shared activity signal that failed (GC then yields)."}),
	}
	for _, c := range []prometheus.Collector{m.yielding, m.admits, m.waits, m.waitSecs, m.readErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("pace metrics: %w", err)
		}
	}
	return m, nil
}

func (m *YieldMetrics) setYielding(busy bool) {
	if m == nil {
		return
	}
	if busy {
		m.yielding.Set(1)
	} else {
		m.yielding.Set(0)
	}
}

func (m *YieldMetrics) admitted() {
	if m != nil {
		m.admits.Inc()
	}
}

func (m *YieldMetrics) waited(d time.Duration) {
	if m != nil && d > 0 {
		m.waits.Inc()
		m.waitSecs.Add(d.Seconds())
	}
}

func (m *YieldMetrics) readFailed() {
	if m != nil {
		m.readErrors.Inc()
	}
}
