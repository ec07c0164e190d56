package activity_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stratus-registry/stratus/activity"
	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
)

func newPublisher(t *testing.T, sink activity.Sink) (*activity.Publisher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := activity.New(sink, activity.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

// Each backend: requests served concurrently reach the shared count, and
// once the backend is dead they are dropped (and counted) while Served
// and Flush go on returning at once.
func TestPublisher(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) (s locking.Activity, kill func() error)
	}{
		{"memory", func(t *testing.T) (locking.Activity, func() error) {
			s := memory.New()
			t.Cleanup(func() { s.Close() })
			return s, s.Close
		}},
		{"redis", func(t *testing.T) (locking.Activity, func() error) {
			srv := lockingtest.StartRedis(t)
			s, err := lockredis.New(context.Background(), lockredis.Config{
				Addrs: []string{srv.Addr()}, DialTimeout: 300 * time.Millisecond,
				ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, srv.Stop
		}},
	}
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, kill := b.open(t)
			p, reg := newPublisher(t, s)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 250 {
						p.Served()
					}
				})
			}
			wg.Wait()
			p.Flush(ctx)
			if n, err := s.RecentActivity(ctx, locking.ActivityKeep); err != nil || n != 1000 {
				t.Fatalf("shared count after 1000 served = %d, %v", n, err)
			}
			if v := counter(t, reg, "stratus_activity_published_total"); v != 1000 {
				t.Errorf("published_total = %v, want 1000", v)
			}

			if err := kill(); err != nil {
				t.Fatal(err)
			}
			for range 7 {
				p.Served()
			}
			p.Flush(ctx)
			if v := counter(t, reg, "stratus_activity_dropped_total"); v != 7 {
				t.Errorf("dropped_total = %v after a flush to a dead backend, want 7", v)
			}
			p.Flush(ctx) // nothing new: nothing sent, nothing dropped
			if v := counter(t, reg, "stratus_activity_dropped_total"); v != 7 {
				t.Errorf("dropped_total = %v after an empty flush, want 7", v)
			}
		})
	}
}

// recorder is a Sink that records what it was sent.
type recorder struct {
	mu   sync.Mutex
	sent []int64
}

func (r *recorder) AddActivity(ctx context.Context, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, n)
	return nil
}

func (r *recorder) total() (calls int, sum int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.sent {
		sum += n
	}
	return len(r.sent), sum
}

// Run sends nothing while nothing is served, batches what is, and
// publishes the rest when its context ends.
func TestRunBatchesAndFlushesOnStop(t *testing.T) {
	rec := &recorder{}
	p, err := activity.New(rec, activity.Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { p.Run(ctx); close(stopped) }()
	for range 5 {
		p.Served()
	}
	cancel()
	<-stopped
	if calls, sum := rec.total(); calls != 1 || sum != 5 {
		t.Fatalf("after stop: %d calls carrying %d requests, want one call of 5", calls, sum)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		sink activity.Sink
		opts activity.Options
	}{
		{"no sink", nil, activity.Options{}},
		{"negative interval", &recorder{}, activity.Options{Interval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := activity.New(tt.sink, tt.opts); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := activity.New(&recorder{}, activity.Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := activity.New(&recorder{}, activity.Options{Registerer: reg}); err == nil {
		t.Fatal("a second publisher registered the same series on one registry")
	}
	if n := testutil.CollectAndCount(reg); n != 2 {
		t.Errorf("%d series, want 2", n)
	}
}
