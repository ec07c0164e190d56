package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/redis"
)

// server is the redis-server every test except the fault tests shares;
// the suite uses random keys, so tests do not see each other.
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

// newTestStore opens a Store on addr, closed when the test ends.
func newTestStore(t *testing.T, cfg redis.Config) *redis.Store {
	t.Helper()
	s, err := redis.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	lockingtest.Run(t, func(t *testing.T) locking.Store {
		return newTestStore(t, redis.Config{Addrs: []string{server.Addr()}})
	})
}

// TestPinAllAfterScriptFlush: a server whose script cache is empty (a
// restart, SCRIPT FLUSH) answers PinAll's pipelined EVALSHAs with NOSCRIPT;
// PinAll then sends the source and pins.
func TestPinAllAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, redis.Config{Addrs: []string{server.Addr()}})
	for round := range 2 {
		if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		link, d := fmt.Sprintf("flush-link-%d-%d", round, time.Now().UnixNano()), fmt.Sprintf("flush-d-%d", round)
		if err := s.PinAll(ctx, link, d); err != nil {
			t.Fatalf("round %d: PinAll after SCRIPT FLUSH: %v", round, err)
		}
		if ok, err := s.Claim(ctx, d, time.Now().Add(-time.Minute), time.Minute); err != nil || ok {
			t.Fatalf("round %d: Claim after PinAll = %v, %v; want false", round, ok, err)
		}
	}
}

// TestClaimManyAfterScriptFlush: a Redis that lost its script cache
// (restarted, or SCRIPT FLUSH) answers the pipelined EVALSHAs with
// NOSCRIPT; those calls had no effect, so ClaimMany sends them again with
// the script body and answers as if nothing happened.
func TestClaimManyAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, redis.Config{Addrs: []string{server.Addr()}})
	key := "flush-test-" + time.Now().Format(time.RFC3339Nano)
	pinned, free := key+"-pinned", key+"-free"
	since, err := s.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimMany(ctx, []string{pinned, free}, since, time.Minute)
	if err != nil || len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("ClaimMany after SCRIPT FLUSH = %v, %v; want [false true]", got, err)
	}
	if err := s.Pin(ctx, free); !errors.Is(err, locking.ErrDeleting) {
		t.Fatalf("Pin of the claimed digest: %v, want ErrDeleting", err)
	}
	if err := s.UnclaimMany(ctx, []string{free}); err != nil {
		t.Fatal(err)
	}
}

// TestKeyPrefixSeparatesStores: two registries sharing one Redis under
// different prefixes do not see each other's leases, pins or sessions.
func TestKeyPrefixSeparatesStores(t *testing.T) {
	ctx := context.Background()
	a := newTestStore(t, redis.Config{Addrs: []string{server.Addr()}, KeyPrefix: "a:"})
	b := newTestStore(t, redis.Config{Addrs: []string{server.Addr()}, KeyPrefix: "b:"})
	key := "prefix-test-" + time.Now().Format(time.RFC3339Nano)
	if _, err := a.Acquire(ctx, key, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, key, time.Minute); err != nil {
		t.Errorf("lease visible across prefixes: %v", err)
	}
	if ok, err := a.Claim(ctx, key, time.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if err := b.Pin(ctx, key); err != nil {
		t.Errorf("claim visible across prefixes: %v", err)
	}
	if err := a.Create(ctx, key, []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, key); !errors.Is(err, locking.ErrNotFound) {
		t.Errorf("session visible across prefixes: %v", err)
	}
}

// faultConfig has short timeouts so that the fault tests are quick.
func faultConfig(addr string) redis.Config {
	return redis.Config{
		Addrs:        []string{addr},
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
	}
}

// within runs f and fails the test if it has not returned after limit: a
// guard against hanging on a dead server, not a performance assertion.
func within(t *testing.T, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("call still blocked after %v", limit)
		return nil
	}
}

// operations runs one call of every kind, so that each is checked against
// a dead server.
func operations(s *redis.Store, l locking.Lease) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Acquire": func(ctx context.Context) error { _, err := s.Acquire(ctx, "fault-k2", time.Minute); return err },
		"Renew":   func(ctx context.Context) error { _, err := s.Renew(ctx, l, time.Minute); return err },
		"Release": func(ctx context.Context) error { return s.Release(ctx, l) },
		"Pin":     func(ctx context.Context) error { return s.Pin(ctx, "fault-d") },
		"PinAll":  func(ctx context.Context) error { return s.PinAll(ctx, "fault-l", "fault-d") },
		"Claim": func(ctx context.Context) error {
			_, err := s.Claim(ctx, "fault-d", time.Now(), time.Minute)
			return err
		},
		"Unclaim": func(ctx context.Context) error { return s.Unclaim(ctx, "fault-d") },
		"ClaimMany": func(ctx context.Context) error {
			_, err := s.ClaimMany(ctx, []string{"fault-d", "fault-e"}, time.Now(), time.Minute)
			return err
		},
		"UnclaimMany": func(ctx context.Context) error { return s.UnclaimMany(ctx, []string{"fault-d", "fault-e"}) },
		"Create":      func(ctx context.Context) error { return s.Create(ctx, "fault-s", nil, time.Minute) },
		"Get":         func(ctx context.Context) error { _, err := s.Get(ctx, "fault-s"); return err },
		"Update": func(ctx context.Context) error {
			return s.Update(ctx, l, "fault-s", nil, time.Minute)
		},
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "fault-s") },
		"Now":    func(ctx context.Context) error { _, err := s.Now(ctx); return err },
	}
}

// TestUnavailableThenRecovered stops Redis under a live Store, checks that
// every call fails with ErrUnavailable (within the configured timeouts),
// then restarts Redis and checks that the same Store works again.
func TestUnavailableThenRecovered(t *testing.T) {
	ctx := context.Background()
	srv := lockingtest.StartRedis(t)
	s := newTestStore(t, faultConfig(srv.Addr()))

	l, err := s.Acquire(ctx, locking.SessionLeaseKey("fault-s"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, op := range operations(s, l) {
		err := within(t, 5*time.Second, func() error { return op(ctx) })
		if !errors.Is(err, locking.ErrUnavailable) {
			t.Errorf("%s with Redis stopped: %v, want ErrUnavailable", name, err)
		}
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis came back empty (no persistence): the lease is gone, and a new
	// one still gets a larger token thanks to the clock floor.
	if _, err := s.Renew(ctx, l, time.Minute); !errors.Is(err, locking.ErrLost) {
		t.Errorf("Renew after a restart that lost the lease: %v, want ErrLost", err)
	}
	n, err := s.Acquire(ctx, l.Key, time.Minute)
	if err != nil {
		t.Fatalf("Acquire after restart: %v", err)
	}
	if n.Token <= l.Token {
		t.Errorf("token after a restart %d, want > %d", n.Token, l.Token)
	}
	if err := s.Create(ctx, "fault-s", []byte("x"), time.Minute); err != nil {
		t.Errorf("Create after restart: %v", err)
	}
	if err := s.Update(ctx, n, "fault-s", []byte("y"), time.Minute); err != nil {
		t.Errorf("Update after restart: %v", err)
	}
	if err := s.Pin(ctx, "fault-d"); err != nil {
		t.Errorf("Pin after restart: %v", err)
	}
}

// TestUnresponsiveRedisTimesOut freezes Redis (connections stay open,
// nothing answers): calls must give up after the read timeout with
// ErrUnavailable instead of hanging, and work again once it thaws.
func TestUnresponsiveRedisTimesOut(t *testing.T) {
	ctx := context.Background()
	srv := lockingtest.StartRedis(t)
	s := newTestStore(t, faultConfig(srv.Addr()))
	if _, err := s.Get(ctx, "warm-up"); !errors.Is(err, locking.ErrNotFound) {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	for _, name := range []string{"Get", "Acquire", "Pin"} {
		op := operations(s, locking.Lease{})[name]
		err := within(t, 5*time.Second, func() error { return op(ctx) })
		if !errors.Is(err, locking.ErrUnavailable) {
			t.Errorf("%s with Redis frozen: %v, want ErrUnavailable", name, err)
		}
	}
	// A caller's own deadline, shorter than the read timeout, also ends
	// the wait.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := within(t, 5*time.Second, func() error { _, err := s.Get(dctx, "x"); return err })
	if !errors.Is(err, locking.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get past the caller's deadline: %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Get(ctx, "after-thaw")
		if errors.Is(err, locking.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after Redis thawed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNewWithRedisDown: a replica starts while Redis is down (and is not
// ready until it answers); New does not fail.
func TestNewWithRedisDown(t *testing.T) {
	srv := lockingtest.StartRedis(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, faultConfig(srv.Addr()))
	if _, err := s.Get(context.Background(), "x"); !errors.Is(err, locking.ErrUnavailable) {
		t.Errorf("Get with Redis down: %v, want ErrUnavailable", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "x"); !errors.Is(err, locking.ErrNotFound) {
		t.Errorf("Get once Redis is up: %v, want ErrNotFound", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := redis.New(context.Background(), redis.Config{}, nil)
	if err == nil || err.Error() != "redis.addrs: required" {
		t.Errorf("New with no addrs: %v", err)
	}
}

// TestTCP covers the host:port path (the suite runs on a unix socket).
func TestTCP(t *testing.T) {
	ctx := context.Background()
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	s := newTestStore(t, redis.Config{Addrs: []string{srv.Addr()}})
	l, err := s.Acquire(ctx, locking.SessionLeaseKey("tcp"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "tcp", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, l, "tcp", []byte("b"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "tcp"); err != nil || string(got) != "b" {
		t.Errorf("Get = %q, %v", got, err)
	}
}

// TestPasswordTLSAndDB runs the locking suite against a redis-server that
// requires a password and TLS, on a non-default database, and checks that
// a wrong password and an untrusted server are refused.
func TestPasswordTLSAndDB(t *testing.T) {
	files, err := lockingtest.WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := lockingtest.StartRedis(t, lockingtest.RedisPassword("s3cret"), lockingtest.RedisTLS(files))
	good := redis.Config{
		Addrs: []string{srv.Addr()}, Password: "s3cret", DB: 3,
		TLS: redis.TLSConfig{Enabled: true, CAFile: files.CA},
	}
	lockingtest.Run(t, func(t *testing.T) locking.Store { return newTestStore(t, good) })

	ctx := context.Background()
	db3 := newTestStore(t, good)
	if err := db3.Create(ctx, "in-db-3", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	db0cfg := good
	db0cfg.DB = 0
	if _, err := newTestStore(t, db0cfg).Get(ctx, "in-db-3"); !errors.Is(err, locking.ErrNotFound) {
		t.Errorf("database 0 sees a record of database 3: %v", err)
	}
	for name, cfg := range map[string]redis.Config{
		"wrong password": {Addrs: good.Addrs, Password: "nope", TLS: good.TLS},
		"untrusted CA":   {Addrs: good.Addrs, Password: "s3cret", TLS: redis.TLSConfig{Enabled: true}},
		"no TLS":         {Addrs: good.Addrs, Password: "s3cret", DialTimeout: time.Second, ReadTimeout: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := redis.New(ctx, cfg, nil)
			if err == nil {
				defer s.Close()
				_, err = s.Get(ctx, "in-db-3")
			}
			if err == nil || errors.Is(err, locking.ErrNotFound) {
				t.Fatalf("a misconfigured client worked: %v", err)
			}
		})
	}
}
