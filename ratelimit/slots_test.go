package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/ratelimit"
)

// runSlotsConformance is the contract of every Slots implementation.
func runSlotsConformance(t *testing.T, newSlots func(t *testing.T) ratelimit.Slots) {
	ctx := context.Background()
	const hour = time.Hour

	t.Run("limit enforced and released", func(t *testing.T) {
		s := newSlots(t)
		for i := range 3 {
			d, err := s.Acquire(ctx, "repo/a", fmt.Sprint("u", i), 3, hour)
			if err != nil || !d.Allowed || d.Remaining != 2-i {
				t.Fatalf("slot %d: %+v %v, want allowed with %d remaining", i, d, err, 2-i)
			}
		}
		d, err := s.Acquire(ctx, "repo/a", "u3", 3, hour)
		if err != nil || d.Allowed || d.RetryAfter <= 59*time.Minute || d.RetryAfter > hour {
			t.Fatalf("slot over the limit: %+v %v, want denied until the first slot expires (~1h)", d, err)
		}
		if d, err := s.Acquire(ctx, "repo/b", "u3", 3, hour); err != nil || !d.Allowed {
			t.Fatalf("another key: %+v %v", d, err)
		}
		if err := s.Release(ctx, "repo/a", "u1"); err != nil {
			t.Fatal(err)
		}
		if d, err := s.Acquire(ctx, "repo/a", "u3", 3, hour); err != nil || !d.Allowed {
			t.Fatalf("after a release: %+v %v, want allowed", d, err)
		}
		if err := s.Release(ctx, "repo/a", "never-held"); err != nil {
			t.Fatalf("releasing a slot not held: %v", err)
		}
	})

	t.Run("holding again renews instead of counting twice", func(t *testing.T) {
		s := newSlots(t)
		for range 3 {
			if d, err := s.Acquire(ctx, "k", "same", 1, hour); err != nil || !d.Allowed {
				t.Fatalf("%+v %v", d, err)
			}
		}
	})

	t.Run("expired slots free themselves", func(t *testing.T) {
		s := newSlots(t)
		if d, err := s.Acquire(ctx, "k", "crashed", 1, 30*time.Millisecond); err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		d, err := s.Acquire(ctx, "k", "next", 1, hour)
		if err != nil || d.Allowed || d.RetryAfter > 30*time.Millisecond {
			t.Fatalf("while held: %+v %v, want denied for at most 30ms", d, err)
		}
		time.Sleep(d.RetryAfter + 10*time.Millisecond)
		if d, err := s.Acquire(ctx, "k", "next", 1, hour); err != nil || !d.Allowed {
			t.Fatalf("after the holder's ttl: %+v %v, want allowed", d, err)
		}
	})

	t.Run("concurrent acquires never exceed the limit", func(t *testing.T) {
		s := newSlots(t)
		var got atomic.Int64
		var wg sync.WaitGroup
		for g := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := s.Acquire(ctx, "hot", fmt.Sprint("h", g), 7, hour)
				if err != nil {
					t.Error(err)
				}
				if d.Allowed {
					got.Add(1)
				}
			}()
		}
		wg.Wait()
		if got.Load() != 7 {
			t.Fatalf("%d of 40 concurrent acquires allowed, want the limit 7", got.Load())
		}
	})

	t.Run("invalid limits are errors", func(t *testing.T) {
		s := newSlots(t)
		if _, err := s.Acquire(ctx, "k", "h", 0, hour); err == nil {
			t.Error("limit 0: no error")
		}
		if _, err := s.Acquire(ctx, "k", "h", 1, 0); err == nil {
			t.Error("ttl 0: no error")
		}
	})
}

func TestMemorySlots(t *testing.T) {
	runSlotsConformance(t, func(t *testing.T) ratelimit.Slots { return ratelimit.NewMemorySlots() })
}

func TestRedisSlots(t *testing.T) {
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	n := 0
	runSlotsConformance(t, func(t *testing.T) ratelimit.Slots {
		n++
		return ratelimit.NewRedisSlots(client, fmt.Sprintf("test%d:", n))
	})

	t.Run("state expires with the last slot", func(t *testing.T) {
		ctx := context.Background()
		s := ratelimit.NewRedisSlots(client, "stratus:")
		if _, err := s.Acquire(ctx, "repo", "u1", 5, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		ttl, err := client.PTTL(ctx, s.Key("repo")).Result()
		if err != nil || ttl <= 0 || ttl > 200*time.Millisecond {
			t.Fatalf("PTTL = %v %v, want in (0, 200ms]", ttl, err)
		}
		if err := s.Release(ctx, "repo", "u1"); err != nil {
			t.Fatal(err)
		}
		if n, err := client.Exists(ctx, s.Key("repo")).Result(); err != nil || n != 0 {
			t.Fatalf("key after the last release: exists=%d %v, want gone", n, err)
		}
	})
}

func TestMemorySlotsForgetIdleKeys(t *testing.T) {
	ctx := context.Background()
	s := ratelimit.NewMemorySlots()
	for i := range 100 {
		if _, err := s.Acquire(ctx, fmt.Sprint("repo", i), "u", 1, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := s.Acquire(ctx, "other", "u", 1, 10*time.Millisecond); err != nil { // triggers the sweep
		t.Fatal(err)
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("%d keys tracked after the others expired, want 1", n)
	}
}
