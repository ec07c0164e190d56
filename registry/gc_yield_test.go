package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/activity"
	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/gc"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/pace"
)

// yieldFleet is two replicas on one store and one lock store: "serving"
// answers the API and publishes its activity, "collector" serves nothing
// and runs GC through a Yielder, as the GC lease holder of a fleet does.
type yieldFleet struct {
	serving   *testRegistry
	collector *Registry
	metrics   *prometheus.Registry
	act       locking.Activity
}

// Short timings so the test does not wait out the production window.
const (
	yieldWindow  = time.Second
	yieldRefresh = 100 * time.Millisecond
)

func newYieldFleet(t *testing.T, locks locking.Store, gcDriver func(storage.Driver) storage.Driver, share float64, cfg Config, pinTTL time.Duration) *yieldFleet {
	t.Helper()
	act, ok := locks.(locking.Activity)
	if !ok {
		t.Fatalf("%T keeps no activity count", locks)
	}
	store := inmemory.New()
	t.Cleanup(func() { store.Close() })
	pub, err := activity.New(act, activity.Options{Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { pub.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	serving, err := New(context.Background(), cfg, Deps{Storage: store, Locking: locks, Activity: pub})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, serving))
	t.Cleanup(srv.Close)

	metrics := prometheus.NewRegistry()
	m, err := pace.NewYieldMetrics(metrics)
	if err != nil {
		t.Fatal(err)
	}
	y, err := pace.NewYielder(act, pace.YieldConfig{Share: share, Window: yieldWindow, Refresh: yieldRefresh, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	collector, err := New(context.Background(), cfg, Deps{Storage: store, Locking: locks,
		GCStorage: pace.WrapGate(gcDriver(store), y), PinTTL: pinTTL})
	if err != nil {
		t.Fatal(err)
	}
	return &yieldFleet{serving: &testRegistry{t: t, srv: srv, store: store}, collector: collector, metrics: metrics, act: act}
}

func (f *yieldFleet) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := f.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

// waitActivity polls the shared count until busy(count) holds.
func (f *yieldFleet) waitActivity(t *testing.T, what string, busy func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := f.act.RecentActivity(context.Background(), yieldWindow)
		if err == nil && busy(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: activity %d, %v", what, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pullLoop pulls ref from the serving replica until stop is closed.
func (f *yieldFleet) pullLoop(t *testing.T, path string) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			r, err := http.Get(f.serving.srv.URL + path)
			if err != nil {
				t.Errorf("pull during GC: %v", err)
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				t.Errorf("pull during GC: %s", r.Status)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// A pass that runs while another replica serves pulls yields (its store
// requests go one at a time, counted); the same pass with no traffic in
// the window does not. Both backends: with Redis the signal crosses
// processes' clients the way it does in a fleet.
func TestGCYieldsToServedTraffic(t *testing.T) {
	for name, newLocks := range lockStores(t) {
		t.Run(name, func(t *testing.T) {
			f := newYieldFleet(t, newLocks(t), func(d storage.Driver) storage.Driver { return d }, 0.5, gcConfig("delete"), 0)
			tr := f.serving
			_, m := tr.imageManifest("app", []byte("layer one"), []byte("layer two"))
			tr.expect(tr.do("PUT", "/v2/app/manifests/v1", m, "Content-Type", mtOCIManifest), 201, "")
			tr.pushBlob("scratch", []byte("garbage"))

			// Idle: the setup's requests have left the window, and probes
			// of the base endpoint (load balancers) are not activity.
			f.waitActivity(t, "the setup to be published", func(n int64) bool { return n > 0 })
			f.waitActivity(t, "the setup to leave the window", func(n int64) bool { return n == 0 })
			time.Sleep(yieldRefresh) // nor does a cached reading from then
			probes := f.pullLoop(t, "/v2/")
			_, err := f.collector.RunGC(context.Background(), false)
			probes()
			if err != nil {
				t.Fatal(err)
			}
			if v := f.metric(t, "stratus_gc_yield_requests_total"); v != 0 {
				t.Fatalf("an idle pass made %v requests in yield mode, want 0", v)
			}
			if v := f.metric(t, "stratus_gc_yielding"); v != 0 {
				t.Fatalf("stratus_gc_yielding = %v after an idle pass", v)
			}

			// Busy: pulls on the serving replica while the collector runs.
			stop := f.pullLoop(t, "/v2/app/manifests/v1")
			f.waitActivity(t, "pulls to be seen", func(n int64) bool { return n > 0 })
			time.Sleep(yieldRefresh) // the collector's cached idle reading expires
			_, err = f.collector.RunGC(context.Background(), false)
			stop()
			if err != nil {
				t.Fatal(err)
			}
			if v := f.metric(t, "stratus_gc_yield_requests_total"); v == 0 {
				t.Fatal("a pass during pulls made no request in yield mode")
			}
			if v := f.metric(t, "stratus_gc_yielding"); v != 1 {
				t.Errorf("stratus_gc_yielding = %v after a pass during pulls", v)
			}
			tr.expect(tr.do("GET", "/v2/app/manifests/v1", nil), 200, "")
		})
	}
}

// slowDriver makes every request take at least d, as a loaded store does.
type slowDriver struct {
	storage.Driver
	d time.Duration
}

func (s slowDriver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	time.Sleep(s.d)
	return s.Driver.List(ctx, prefix, startAfter, limit)
}

func (s slowDriver) Stat(ctx context.Context, key string) (storage.Info, error) {
	time.Sleep(s.d)
	return s.Driver.Stat(ctx, key)
}

func (s slowDriver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	time.Sleep(s.d)
	return s.Driver.Reader(ctx, key, offset, length)
}

// A pass that yields so long that it outlives the pin lifetime is still
// stopped by the guard (gc.ErrPassTooLong): yielding slows a pass, it
// never lets it claim past the pins it can trust.
func TestYieldingPassStillStopsPastPinLifetime(t *testing.T) {
	locks := lockStores(t)["memory"](t)
	// 20ms requests at a 5% share: 380ms pauses, so the few requests
	// before the first claim outlast the 300ms the pass may run.
	slow := func(d storage.Driver) storage.Driver { return slowDriver{d, 20 * time.Millisecond} }
	f := newYieldFleet(t, locks, slow, 0.05, gcConfig("delete"), testGrace+gc.ClaimTTL+300*time.Millisecond)
	tr := f.serving
	tr.pushBlob("scratch", []byte("garbage"))
	served := tr.pushBlob("other", []byte("traffic"))
	ageOut()
	stop := f.pullLoop(t, "/v2/other/blobs/"+served)
	defer stop()
	f.waitActivity(t, "the pulls to be seen", func(n int64) bool { return n > 0 })
	_, err := f.collector.RunGC(context.Background(), false)
	if !errors.Is(err, gc.ErrPassTooLong) {
		t.Fatalf("a crawling yielded pass: %v, want ErrPassTooLong", err)
	}
}
