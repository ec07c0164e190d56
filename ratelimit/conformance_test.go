package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/ratelimit"
)

// runConformance is the contract every Limiter meets; each implementation
// runs it with a constructor of fresh, empty limiters.
func runConformance(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	ctx := context.Background()
	// slow refills one request per hour: within a test, only the burst
	// is ever available.
	slow := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 3}

	t.Run("burst allowed then denied with retry after", func(t *testing.T) {
		l := newLimiter(t)
		for i := range slow.Burst {
			d, err := l.Allow(ctx, "k", slow)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || d.Remaining != slow.Burst-1-i {
				t.Fatalf("request %d: %+v, want allowed with %d remaining", i, d, slow.Burst-1-i)
			}
		}
		d, err := l.Allow(ctx, "k", slow)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.RetryAfter <= 59*time.Minute || d.RetryAfter > time.Hour {
			t.Fatalf("request over the burst: %+v, want denied with retry after about 1h", d)
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		l := newLimiter(t)
		one := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 1}
		for _, k := range []string{"ip:192.0.2.1", "ip:192.0.2.2", "user:alice"} {
			if d, err := l.Allow(ctx, k, one); err != nil || !d.Allowed {
				t.Fatalf("first request of %s: %+v %v", k, d, err)
			}
			if d, err := l.Allow(ctx, k, one); err != nil || d.Allowed {
				t.Fatalf("second request of %s: %+v %v, want denied", k, d, err)
			}
		}
	})

	t.Run("allowance refills at the rate", func(t *testing.T) {
		l := newLimiter(t)
		fast := ratelimit.Rate{PerSecond: 20, Burst: 2} // one request per 50ms
		for range fast.Burst {
			if d, err := l.Allow(ctx, "k", fast); err != nil || !d.Allowed {
				t.Fatalf("burst: %+v %v", d, err)
			}
		}
		d, err := l.Allow(ctx, "k", fast)
		if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 50*time.Millisecond {
			t.Fatalf("over the burst: %+v %v, want denied for at most 50ms", d, err)
		}
		time.Sleep(d.RetryAfter + 5*time.Millisecond)
		if d, err := l.Allow(ctx, "k", fast); err != nil || !d.Allowed {
			t.Fatalf("after waiting Retry-After: %+v %v, want allowed", d, err)
		}
		if d, err := l.Allow(ctx, "k", fast); err != nil || d.Allowed {
			t.Fatalf("one interval refills one request, got a second: %+v %v", d, err)
		}
	})

	t.Run("concurrent requests never exceed the burst", func(t *testing.T) {
		l := newLimiter(t)
		rate := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 10}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					d, err := l.Allow(ctx, "shared", rate)
					if err != nil {
						t.Errorf("goroutine %d: %v", g, err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if got := allowed.Load(); got != int64(rate.Burst) {
			t.Fatalf("%d of 80 concurrent requests allowed, want exactly the burst %d", got, rate.Burst)
		}
	})

	t.Run("invalid rates are errors", func(t *testing.T) {
		l := newLimiter(t)
		for _, r := range []ratelimit.Rate{{PerSecond: 0, Burst: 1}, {PerSecond: -1, Burst: 1}, {PerSecond: 1, Burst: 0}} {
			if _, err := l.Allow(ctx, "k", r); err == nil {
				t.Errorf("Allow with %+v: no error", r)
			}
		}
	})

	t.Run("many keys", func(t *testing.T) {
		l := newLimiter(t)
		one := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 1}
		for i := range 500 {
			if d, err := l.Allow(ctx, fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256), one); err != nil || !d.Allowed {
				t.Fatalf("key %d: %+v %v", i, d, err)
			}
		}
	})
}
