package pace_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stratus-registry/stratus/internal/promtest"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/pace"
)

// fakeSignal is the activity count a test sets.
type fakeSignal struct {
	mu    sync.Mutex
	n     int64
	err   error
	reads int
}

func (s *fakeSignal) RecentActivity(ctx context.Context, window time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.n, s.err
}

func (s *fakeSignal) set(n int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n, s.err = n, err
}

func (s *fakeSignal) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// fakeClock moves only when the test advances it; After registers a timer
// that fires when the clock passes its deadline.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// pending is the deadlines of the timers not yet fired, relative to now.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for _, t := range c.timers {
		ds = append(ds, t.at.Sub(c.now))
	}
	return ds
}

// waitPending blocks until some goroutine waits on the clock with a timer
// due in exactly d, the sign that it is blocked in Enter.
func (c *fakeClock) waitPending(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range c.pending() {
			if p == d {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no waiter with a %v timer; pending: %v", d, c.pending())
}

type enterResult struct {
	done func()
	err  error
}

// enterAsync calls Enter in a goroutine.
func enterAsync(ctx context.Context, y *pace.Yielder) <-chan enterResult {
	ch := make(chan enterResult, 1)
	go func() {
		done, err := y.Enter(ctx)
		ch <- enterResult{done, err}
	}()
	return ch
}

func mustNotReturn(t *testing.T, ch <-chan enterResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: Enter returned (err %v) while it should wait", what, r.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func mustReturn(t *testing.T, ch <-chan enterResult, what string) func() {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: Enter: %v", what, r.err)
		}
		return r.done
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Enter still waiting", what)
	}
	return nil
}

func newTestYielder(t *testing.T, sig pace.Signal, share float64) (*pace.Yielder, *fakeClock, *prometheus.Registry) {
	t.Helper()
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	m, err := pace.NewYieldMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	y, err := pace.NewYielder(sig, pace.YieldConfig{Share: share, Clock: clock, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return y, clock, reg
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	m := promtest.Find(t, reg, name, nil)
	if m == nil {
		t.Fatalf("no series %s", name)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestNewYielderRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		sig   pace.Signal
		share float64
	}{
		{"no signal", nil, 0.1},
		{"zero share", &fakeSignal{}, 0},
		{"negative share", &fakeSignal{}, -0.5},
		{"share above one", &fakeSignal{}, 1.5},
		{"NaN share", &fakeSignal{}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pace.NewYielder(tt.sig, pace.YieldConfig{Share: tt.share}); err == nil {
				t.Fatal("NewYielder accepted it")
			}
		})
	}
}

// Idle: requests are admitted at once, any number together, and the clock
// is never waited on.
func TestYielderIdleDoesNotPace(t *testing.T) {
	y, clock, reg := newTestYielder(t, &fakeSignal{}, 0.1)
	var dones []func()
	for range 8 {
		done, err := y.Enter(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
		clock.Advance(time.Second / 4) // requests that take long cost no pause
	}
	for _, d := range dones {
		d()
	}
	if _, err := y.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := clock.pending(); len(p) != 0 {
		t.Errorf("idle Enter waited on the clock: %v", p)
	}
	if v := metric(t, reg, "stratus_gc_yielding"); v != 0 {
		t.Errorf("stratus_gc_yielding = %v while idle", v)
	}
}

// Busy: the pause after a request is its duration × (1-share)/share; the
// next request waits exactly that.
func TestYielderBusyPauseIsProportional(t *testing.T) {
	tests := []struct {
		share     float64
		took      time.Duration
		wantPause time.Duration
	}{
		{0.1, 30 * time.Millisecond, 270 * time.Millisecond},
		{0.1, 100 * time.Millisecond, 900 * time.Millisecond},
		{0.25, 200 * time.Millisecond, 600 * time.Millisecond},
		{0.5, 80 * time.Millisecond, 80 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.took.String()+" at share "+formatShare(tt.share), func(t *testing.T) {
			y, clock, reg := newTestYielder(t, &fakeSignal{n: 3}, tt.share)
			done, err := y.Enter(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.took)
			done()
			next := enterAsync(context.Background(), y)
			clock.waitPending(t, tt.wantPause)
			clock.Advance(tt.wantPause - time.Millisecond)
			mustNotReturn(t, next, "1ms before the pause ends")
			clock.Advance(time.Millisecond)
			mustReturn(t, next, "at the end of the pause")()
			if v := metric(t, reg, "stratus_gc_yielding"); v != 1 {
				t.Errorf("stratus_gc_yielding = %v while busy", v)
			}
			if v := metric(t, reg, "stratus_gc_yield_requests_total"); v != 2 {
				t.Errorf("stratus_gc_yield_requests_total = %v, want 2", v)
			}
			if v := metric(t, reg, "stratus_gc_yield_wait_seconds_total"); math.Abs(v-tt.wantPause.Seconds()) > 1e-9 {
				t.Errorf("stratus_gc_yield_wait_seconds_total = %v, want %v", v, tt.wantPause.Seconds())
			}
		})
	}
}

func formatShare(s float64) string {
	return time.Duration(s * float64(time.Second)).String()
}

// Busy: a second request waits while the first is in the store, and
// starts when it ends (share 1: no pause).
func TestYielderBusyOneInFlight(t *testing.T) {
	y, clock, _ := newTestYielder(t, &fakeSignal{n: 1}, 1)
	first, err := y.Enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second := enterAsync(context.Background(), y)
	third := enterAsync(context.Background(), y)
	clock.waitPending(t, pace.DefaultRefresh)
	mustNotReturn(t, second, "second while the first is in flight")
	first()
	waiters := inOrder(second, third)
	done := mustReturn(t, waiters, "one waiter after the first ended")
	mustNotReturn(t, waiters, "the other waiter while one is in flight")
	done()
	mustReturn(t, waiters, "the other waiter once that one ended")()
}

// inOrder merges two waiters' results in the order they return.
func inOrder(a, b <-chan enterResult) <-chan enterResult {
	out := make(chan enterResult, 2)
	go func() {
		select {
		case r := <-a:
			out <- r
			out <- <-b
		case r := <-b:
			out <- r
			out <- <-a
		}
	}()
	return out
}

// The signal is re-read once per refresh: traffic that starts slows a
// pass down within a refresh, and traffic that stops ends even a long
// pause within one.
func TestYielderSwitchesBothWays(t *testing.T) {
	sig := &fakeSignal{}
	y, clock, reg := newTestYielder(t, sig, 0.1)
	ctx := context.Background()

	a, err := y.Enter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a()
	sig.set(5, nil)
	// Within the refresh the old reading holds: no read, no wait.
	clock.Advance(pace.DefaultRefresh / 2)
	reads := sig.readCount()
	b, err := y.Enter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sig.readCount() != reads {
		t.Errorf("the signal was read again within the refresh interval")
	}
	b()

	clock.Advance(pace.DefaultRefresh / 2)
	long, err := y.Enter(ctx) // reads busy: the one busy-mode request
	if err != nil {
		t.Fatal(err)
	}
	if v := metric(t, reg, "stratus_gc_yielding"); v != 1 {
		t.Fatalf("stratus_gc_yielding = %v after traffic started", v)
	}
	clock.Advance(10 * time.Second) // a slow listing: a 90 s pause
	long()
	waiter := enterAsync(ctx, y)
	clock.waitPending(t, pace.DefaultRefresh)
	mustNotReturn(t, waiter, "in the pause while still busy")

	sig.set(0, nil)
	clock.Advance(pace.DefaultRefresh)
	mustReturn(t, waiter, "after the traffic stopped")()
	if v := metric(t, reg, "stratus_gc_yielding"); v != 0 {
		t.Errorf("stratus_gc_yielding = %v after traffic stopped", v)
	}
}

// An unreadable signal counts as busy (and is counted); a readable one
// ends that.
func TestYielderSignalErrorIsBusy(t *testing.T) {
	sig := &fakeSignal{err: errors.New("redis down")}
	y, clock, reg := newTestYielder(t, sig, 0.5)
	done, err := y.Enter(context.Background())
	if err != nil {
		t.Fatalf("Enter with an unreadable signal: %v (GC must go on)", err)
	}
	second := enterAsync(context.Background(), y)
	clock.waitPending(t, pace.DefaultRefresh)
	mustNotReturn(t, second, "second request while the signal is unreadable")
	if v := metric(t, reg, "stratus_gc_yielding"); v != 1 {
		t.Errorf("stratus_gc_yielding = %v with an unreadable signal", v)
	}
	if v := metric(t, reg, "stratus_gc_activity_read_errors_total"); v != 1 {
		t.Errorf("stratus_gc_activity_read_errors_total = %v, want 1", v)
	}
	sig.set(0, nil)
	clock.Advance(pace.DefaultRefresh)
	mustReturn(t, second, "once the signal reads idle")()
	done()
}

// Cancelling the context ends a wait with its error, and leaves nothing
// held: the next request is admitted.
func TestYielderCancelEndsWait(t *testing.T) {
	y, clock, _ := newTestYielder(t, &fakeSignal{n: 1}, 0.1)
	first, err := y.Enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiter := enterAsync(ctx, y)
	clock.waitPending(t, pace.DefaultRefresh)
	cancel()
	select {
	case r := <-waiter:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Enter: %v, want context.Canceled", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled Enter still waiting")
	}
	first()
	first() // done is idempotent: a second call must not free a slot twice
	next := enterAsync(context.Background(), y)
	// A zero-length first request: no pause.
	mustReturn(t, next, "after the cancelled waiter")()
}

// The wrapper over a busy Yielder meets the driver contract: every
// request ends its turn, so none waits forever (an open reader included).
func TestDriverSuiteThroughBusyYielder(t *testing.T) {
	shared := inmemory.New()
	drivertest.RunWith(t, func(t *testing.T) storage.Driver {
		y, err := pace.NewYielder(&fakeSignal{n: 1}, pace.YieldConfig{Share: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		d := pace.WrapGate(shared.Clone(), y)
		t.Cleanup(func() { _ = d.Close() })
		return d
	}, drivertest.Config{SkipBoundedMemory: true, LargeSize: 8 << 20})
}

// The series register once per registry, as every metric of a process.
func TestYieldMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := pace.NewYieldMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := pace.NewYieldMetrics(reg); err == nil {
		t.Fatal("a second registration on one registry succeeded")
	}
	if n := testutil.CollectAndCount(reg); n != 5 {
		t.Errorf("%d series registered, want 5", n)
	}
}
