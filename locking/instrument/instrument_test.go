package instrument_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/internal/promtest"
	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/instrument"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/locking/redis"
)

var server *lockingtest.RedisServer

func TestMain(m *testing.M) {
	var err error
	server, err = lockingtest.StartRedisServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := server.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping redis-server:", err)
	}
	os.Exit(code)
}

func newMetrics(t *testing.T) (*instrument.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := instrument.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestSuiteThroughWrapper(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		m, reg := newMetrics(t)
		lockingtest.Run(t, func(t *testing.T) locking.Store {
			s := m.Wrap(memory.New(), "memory")
			t.Cleanup(func() { s.Close() })
			return s
		})
		if n := count(t, reg, "memory", "lease_acquire"); n == 0 {
			t.Error("no lease_acquire observed after the suite")
		}
	})
	t.Run("redis", func(t *testing.T) {
		m, reg := newMetrics(t)
		lockingtest.Run(t, func(t *testing.T) locking.Store {
			s, err := redis.New(context.Background(), redis.Config{Addrs: []string{server.Addr()}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := m.Wrap(s, "redis")
			t.Cleanup(func() { w.Close() })
			return w
		})
		if n := count(t, reg, "redis", "now"); n == 0 {
			t.Error("the suite read the store's clock, but no 'now' was observed: Now is not forwarded")
		}
	})
}

// noClock is a store without the Now capability.
type noClock struct{ locking.Store }

func TestClockForwardedOnlyWhenPresent(t *testing.T) {
	m, _ := newMetrics(t)
	type clock interface {
		Now(context.Context) (time.Time, error)
	}
	tests := []struct {
		name  string
		store locking.Store
		want  bool
	}{
		{"memory has a clock", memory.New(), true},
		{"a store without one", noClock{memory.New()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.store.Close()
			if _, ok := m.Wrap(tt.store, "memory").(clock); ok != tt.want {
				t.Errorf("wrapper has Now = %v; want %v", ok, tt.want)
			}
		})
	}
}

// TestRedisDownCountsErrors stops a real redis-server under a live store:
// operations fail and are counted; protocol answers before were not.
func TestRedisDownCountsErrors(t *testing.T) {
	srv := lockingtest.StartRedis(t)
	m, reg := newMetrics(t)
	s, err := redis.New(context.Background(), redis.Config{Addrs: []string{srv.Addr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := m.Wrap(s, "redis")
	defer w.Close()
	ctx := context.Background()
	if _, err := w.Get(ctx, "missing"); !errors.Is(err, locking.ErrNotFound) {
		t.Fatalf("Get missing = %v", err)
	}
	l, err := w.Acquire(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Acquire(ctx, "k", time.Minute); !errors.Is(err, locking.ErrHeld) {
		t.Fatalf("second Acquire = %v", err)
	}
	tests := []struct{ op string }{{"session_get"}, {"lease_acquire"}}
	for _, tt := range tests {
		if n := errorsOf(t, reg, "redis", tt.op); n != 0 {
			t.Errorf("errors{op=%s} = %v before the outage; protocol answers are not failures", tt.op, n)
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.Get(cctx, "missing"); err == nil || errors.Is(err, locking.ErrNotFound) {
		t.Fatalf("Get with redis stopped = %v; want a failure", err)
	}
	if err := w.Release(cctx, l); err == nil {
		t.Fatal("Release with redis stopped succeeded")
	}
	for _, op := range []string{"session_get", "lease_release"} {
		if n := errorsOf(t, reg, "redis", op); n != 1 {
			t.Errorf("errors{op=%s} = %v during the outage; want 1", op, n)
		}
	}
}

func count(t *testing.T, reg *prometheus.Registry, backend, op string) uint64 {
	t.Helper()
	return promtest.Find(t, reg, "stratus_locking_operation_duration_seconds", map[string]string{"backend": backend, "op": op}).GetHistogram().GetSampleCount()
}

func errorsOf(t *testing.T, reg *prometheus.Registry, backend, op string) float64 {
	t.Helper()
	return promtest.Find(t, reg, "stratus_locking_errors_total", map[string]string{"backend": backend, "op": op}).GetCounter().GetValue()
}
