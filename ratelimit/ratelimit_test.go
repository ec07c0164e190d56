package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/ratelimit"
)

func TestMemory(t *testing.T) {
	runConformance(t, func(t *testing.T) ratelimit.Limiter { return ratelimit.NewMemory(0) })
}

func TestRedis(t *testing.T) {
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	n := 0
	runConformance(t, func(t *testing.T) ratelimit.Limiter {
		n++ // a prefix per subtest: each starts empty
		return ratelimit.NewRedis(client, fmt.Sprintf("test%d:", n))
	})
}

func TestMemoryStaysBounded(t *testing.T) {
	ctx := context.Background()
	one := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 1}
	tests := []struct {
		name    string
		maxKeys int
		keys    int
	}{
		{"one key", 1, 50},
		{"ten keys", 10, 1000},
		{"a thousand keys", 1000, 20000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ratelimit.NewMemory(tt.maxKeys)
			for i := range tt.keys {
				if _, err := l.Allow(ctx, fmt.Sprintf("ip:%d", i), one); err != nil {
					t.Fatal(err)
				}
				if n := l.Len(); n > tt.maxKeys {
					t.Fatalf("after %d keys the limiter tracks %d, bound %d", i+1, n, tt.maxKeys)
				}
			}
		})
	}
}

func TestMemoryForgetsIdleKeysFirst(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.NewMemory(10)
	fast := ratelimit.Rate{PerSecond: 1000, Burst: 1}       // state lasts 1ms
	slow := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 1} // state lasts 1h
	if _, err := l.Allow(ctx, "active", slow); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		if _, err := l.Allow(ctx, fmt.Sprintf("idle%d", i), fast); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // the idle keys' state lapses
	for i := range 5 {
		if _, err := l.Allow(ctx, fmt.Sprintf("new%d", i), slow); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := l.Allow(ctx, "active", slow); err != nil || d.Allowed {
		t.Fatalf("an active key was evicted while idle ones were tracked: %+v %v", d, err)
	}
}

func TestRedisStateExpires(t *testing.T) {
	ctx := context.Background()
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	l := ratelimit.NewRedis(client, "stratus:")
	rate := ratelimit.Rate{PerSecond: 10, Burst: 5} // a full burst refills in 500ms
	for range 3 {
		if _, err := l.Allow(ctx, "ip:192.0.2.1", rate); err != nil {
			t.Fatal(err)
		}
	}
	key := l.Key("ip:192.0.2.1")
	if key != "stratus:ratelimit:{ip:192.0.2.1}" {
		t.Errorf("key %q does not follow <prefix>ratelimit:{<key>}", key)
	}
	ttl, err := client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("PTTL after 3 requests = %v, want in (0, 300ms]: state must expire when the allowance is full again", ttl)
	}
}

func TestRedisScriptCacheFlushed(t *testing.T) {
	ctx := context.Background()
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	l := ratelimit.NewRedis(client, "stratus:")
	rate := ratelimit.Rate{PerSecond: 1.0 / 3600, Burst: 2}
	if d, err := l.Allow(ctx, "k", rate); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	// What a restarted or failed-over server looks like: no cached scripts.
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := l.Allow(ctx, "k", rate); err != nil || !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after SCRIPT FLUSH: %+v %v, want the second request allowed via EVAL", d, err)
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := ratelimit.NewRedis(client, "stratus:").Allow(context.Background(), "k", ratelimit.Rate{PerSecond: 1, Burst: 1})
	if err == nil || errors.Is(err, ratelimit.ErrInvalidRate) {
		t.Fatalf("Allow with Redis down: %v, want a Redis error", err)
	}
}
