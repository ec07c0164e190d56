package redis_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/redis"
)

// Each subtest gets its own server, so that Kill stops only its own and
// no other test's requests count into its activity.
func TestActivity(t *testing.T) {
	lockingtest.RunActivity(t, func(t *testing.T) lockingtest.ActivityBackend {
		srv := lockingtest.StartRedis(t)
		a := newTestStore(t, faultConfig(srv.Addr()))
		b := newTestStore(t, faultConfig(srv.Addr()))
		return lockingtest.ActivityBackend{A: a, B: b, Kill: srv.Stop}
	})
}

// TestActivityStateIsBounded: whatever seconds the hash has seen, an add
// leaves only the fields within locking.ActivityKeep, and a key prefix
// keeps two registries' counts apart.
func TestActivityStateIsBounded(t *testing.T) {
	ctx := context.Background()
	prefix := "bounded-" + rand.Text() + ":"
	s := newTestStore(t, redis.Config{Addrs: []string{server.Addr()}, KeyPrefix: prefix})
	other := newTestStore(t, redis.Config{Addrs: []string{server.Addr()}, KeyPrefix: "other-" + rand.Text() + ":"})
	raw := goredis.NewClient(&goredis.Options{Addr: server.Addr()})
	t.Cleanup(func() { raw.Close() })

	now, err := raw.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	key := prefix + "activity"
	// A second an hour ago, and every second of the last minute: what a
	// hash would hold if nothing ever dropped fields.
	stale := []any{fmt.Sprint(now.Unix() - 3600), 7}
	for back := int64(1); back <= 60; back++ {
		stale = append(stale, fmt.Sprint(now.Unix()-back), 1)
	}
	if err := raw.HSet(ctx, key, stale...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddActivity(ctx, 2); err != nil {
		t.Fatal(err)
	}
	fields, err := raw.HLen(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The current second, ActivityKeep seconds before it, and one more if
	// the add ran a second later than the TIME above.
	if fields > 12 {
		t.Errorf("activity hash has %d fields after an add, want at most 12", fields)
	}
	ttl, err := raw.TTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > 11*time.Second {
		t.Errorf("activity hash ttl = %v, %v; want a short expiry", ttl, err)
	}
	if n, err := other.RecentActivity(ctx, time.Second); err != nil || n != 0 {
		t.Errorf("another prefix reads %d, %v; want 0", n, err)
	}
}
