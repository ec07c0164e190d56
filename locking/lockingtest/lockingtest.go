// Package lockingtest is the conformance suite every locking.Store passes,
// and the redis-server launcher the Redis tests (and integration tests) use.
//
// A backend runs the whole suite with one call:
//
//	func TestStore(t *testing.T) {
//		lockingtest.Run(t, func(t *testing.T) locking.Store { return newTestStore(t) })
//	}
package lockingtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// Timing used throughout. Short ttls keep the suite fast; the waits are
// polls with a deadline far above them, so a slow machine (race detector,
// two shared cores) makes the suite slower, not flaky.
const (
	shortTTL = 200 * time.Millisecond
	longTTL  = time.Minute
	waitMax  = 10 * time.Second
	pollStep = 20 * time.Millisecond
)

// Run runs every conformance test against stores made by newStore. newStore
// is called once per subtest and must close the store through t.Cleanup.
// Stores from different calls may share one backend: each subtest uses its
// own random keys.
func Run(t *testing.T, newStore func(t *testing.T) locking.Store) {
	t.Run("Leases", func(t *testing.T) { runLeases(t, newStore) })
	t.Run("Pins", func(t *testing.T) { runPins(t, newStore) })
	t.Run("ClaimMany", func(t *testing.T) { runClaimMany(t, newStore) })
	t.Run("Sessions", func(t *testing.T) { runSessions(t, newStore) })
	t.Run("context cancellation returns promptly", func(t *testing.T) { testCancelled(t, newStore(t)) })
	t.Run("invalid arguments are refused", func(t *testing.T) { testInvalid(t, newStore(t)) })
}

// randKey is a key no other subtest (or earlier run on a shared server) uses.
func randKey(kind string) string { return "lockingtest-" + kind + "-" + rand.Text() }

// clock is what a store exposes when callers should read its clock: Pin
// records that clock, so notPinnedSince must come from it too.
type clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// storeNow reads the store's clock when it has one, else the local clock.
func storeNow(t *testing.T, s locking.Store) time.Time {
	t.Helper()
	c, ok := s.(clock)
	if !ok {
		return time.Now()
	}
	now, err := c.Now(context.Background())
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	return now
}

// eventually polls f until it reports done, failing the test after waitMax.
// f returns a description of the last state for the failure message.
func eventually(t *testing.T, what string, f func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		done, last := f()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, waitMax, last)
		}
		time.Sleep(pollStep)
	}
}

// errString formats a possibly nil error for failure messages.
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func mustAcquire(t *testing.T, s locking.Leases, key string, ttl time.Duration) locking.Lease {
	t.Helper()
	l, err := s.Acquire(context.Background(), key, ttl)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", key, err)
	}
	return l
}

// takeOver waits until key's lease has expired and acquires it.
func takeOver(t *testing.T, s locking.Leases, key string, ttl time.Duration) locking.Lease {
	t.Helper()
	var l locking.Lease
	eventually(t, "acquire after expiry", func() (bool, string) {
		var err error
		l, err = s.Acquire(context.Background(), key, ttl)
		if err != nil && !errors.Is(err, locking.ErrHeld) {
			t.Fatalf("Acquire while waiting for expiry: %v", err)
		}
		return err == nil, errString(err)
	})
	return l
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func testCancelled(t *testing.T, s locking.Store) {
	live := mustAcquire(t, s, randKey("cancel"), longTTL)
	id := randKey("cancel-session")
	if err := s.Create(context.Background(), id, []byte("v1"), longTTL); err != nil {
		t.Fatal(err)
	}
	sl := mustAcquire(t, s, locking.SessionLeaseKey(id), longTTL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Acquire", func() error { _, err := s.Acquire(ctx, randKey("cancel"), longTTL); return err }},
		{"Renew", func() error { _, err := s.Renew(ctx, live, longTTL); return err }},
		{"Release", func() error { return s.Release(ctx, live) }},
		{"Pin", func() error { return s.Pin(ctx, randKey("digest")) }},
		{"Claim", func() error { _, err := s.Claim(ctx, randKey("digest"), time.Now(), longTTL); return err }},
		{"Unclaim", func() error { return s.Unclaim(ctx, randKey("digest")) }},
		{"ClaimMany", func() error {
			_, err := s.ClaimMany(ctx, []string{randKey("digest")}, time.Now(), longTTL)
			return err
		}},
		{"UnclaimMany", func() error { return s.UnclaimMany(ctx, []string{randKey("digest")}) }},
		{"Create", func() error { return s.Create(ctx, randKey("cancel-session"), []byte("x"), longTTL) }},
		{"Get", func() error { _, err := s.Get(ctx, id); return err }},
		{"Update", func() error { return s.Update(ctx, sl, id, []byte("x"), longTTL) }},
		{"Delete", func() error { return s.Delete(ctx, id) }},
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: %v, want context.Canceled", c.name, err)
			}
		case <-time.After(waitMax):
			t.Fatalf("%s with a cancelled context did not return within %v", c.name, waitMax)
		}
	}
	// Nothing above may have taken effect.
	if _, err := s.Renew(context.Background(), live, longTTL); err != nil {
		t.Errorf("the lease did not survive a cancelled Release: %v", err)
	}
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("a cancelled Delete removed the record: Get = %v", err)
	}
	sameBytes(t, "record after a cancelled Update", got, []byte("v1"))
}

func testInvalid(t *testing.T, s locking.Store) {
	ctx := context.Background()
	key := randKey("invalid")
	l := mustAcquire(t, s, key, longTTL)
	calls := []struct {
		name string
		call func() error
	}{
		{"Acquire empty key", func() error { _, err := s.Acquire(ctx, "", longTTL); return err }},
		{"Acquire zero ttl", func() error { _, err := s.Acquire(ctx, randKey("invalid"), 0); return err }},
		{"Renew negative ttl", func() error { _, err := s.Renew(ctx, l, -time.Second); return err }},
		{"Pin empty digest", func() error { return s.Pin(ctx, "") }},
		{"Claim empty digest", func() error { _, err := s.Claim(ctx, "", time.Now(), longTTL); return err }},
		{"Claim zero ttl", func() error { _, err := s.Claim(ctx, randKey("digest"), time.Now(), 0); return err }},
		{"ClaimMany empty digest", func() error {
			_, err := s.ClaimMany(ctx, []string{randKey("digest"), ""}, time.Now(), longTTL)
			return err
		}},
		{"ClaimMany zero ttl", func() error { _, err := s.ClaimMany(ctx, []string{randKey("digest")}, time.Now(), 0); return err }},
		{"UnclaimMany empty digest", func() error { return s.UnclaimMany(ctx, []string{""}) }},
		{"Create empty id", func() error { return s.Create(ctx, "", nil, longTTL) }},
		{"Create zero ttl", func() error { return s.Create(ctx, randKey("session"), nil, 0) }},
		{"Update zero ttl", func() error { return s.Update(ctx, l, randKey("session"), nil, 0) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, locking.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := s.Renew(ctx, l, longTTL); err != nil {
		t.Errorf("a refused Renew changed the lease: %v", err)
	}
}

// sameBytes reports a mismatch without printing a megabyte.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		if len(got) > 64 || len(want) > 64 {
			t.Errorf("%s: got %d bytes, want %d bytes (contents differ)", what, len(got), len(want))
			return
		}
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}
