package memory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// fakeClock is a clock tests move by hand, so expiry is exact and instant.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFakeStore(t *testing.T, opts ...Option) (*Store, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := New(append([]Option{WithClock(clk.Now)}, opts...)...)
	t.Cleanup(func() { s.Close() })
	return s, clk
}

func TestExpiryFollowsTheClock(t *testing.T) {
	ctx := context.Background()
	s, clk := newFakeStore(t)

	a, err := s.Acquire(ctx, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Expires.Equal(clk.Now().Add(time.Second)) {
		t.Errorf("Expires = %v, want now+1s", a.Expires)
	}
	if err := s.Create(ctx, "s", []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, "d", clk.Now(), time.Second); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}

	clk.Advance(time.Second - time.Nanosecond)
	if _, err := s.Acquire(ctx, "k", time.Second); !errors.Is(err, locking.ErrHeld) {
		t.Errorf("Acquire just before expiry: %v, want ErrHeld", err)
	}
	if _, err := s.Get(ctx, "s"); err != nil {
		t.Errorf("Get just before expiry: %v", err)
	}
	if err := s.Pin(ctx, "d"); !errors.Is(err, locking.ErrDeleting) {
		t.Errorf("Pin just before claim expiry: %v, want ErrDeleting", err)
	}

	clk.Advance(time.Nanosecond)
	b, err := s.Acquire(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf("Acquire at expiry: %v", err)
	}
	if b.Token <= a.Token {
		t.Errorf("token %d after %d", b.Token, a.Token)
	}
	if _, err := s.Renew(ctx, a, time.Second); !errors.Is(err, locking.ErrLost) {
		t.Errorf("stale Renew: %v, want ErrLost", err)
	}
	if _, err := s.Get(ctx, "s"); !errors.Is(err, locking.ErrNotFound) {
		t.Errorf("Get at expiry: %v, want ErrNotFound", err)
	}
	if err := s.Pin(ctx, "d"); err != nil {
		t.Errorf("Pin after claim expiry: %v", err)
	}
}

func TestPinIsForgottenAfterPinTTL(t *testing.T) {
	ctx := context.Background()
	s, clk := newFakeStore(t, WithPinTTL(time.Hour))
	pinned := clk.Now()
	if err := s.Pin(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour - time.Nanosecond)
	if ok, _ := s.Claim(ctx, "d", pinned, time.Minute); ok {
		t.Fatal("claimed a digest pinned within the pin ttl")
	}
	clk.Advance(time.Nanosecond)
	if ok, _ := s.Claim(ctx, "d", pinned, time.Minute); !ok {
		t.Fatal("a pin older than the pin ttl still blocks claims")
	}
}

func TestSweepDropsExpiredEntries(t *testing.T) {
	ctx := context.Background()
	s, clk := newFakeStore(t, WithSweepInterval(time.Minute), WithPinTTL(time.Second))
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Acquire(ctx, k, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, k, []byte(k), time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.Pin(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Claim(ctx, k+"-claimed", clk.Now(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	live, err := s.Acquire(ctx, "live", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Minute)
	// Any operation on an unrelated key triggers the sweep.
	if _, err := s.Get(ctx, "unrelated"); !errors.Is(err, locking.ErrNotFound) {
		t.Fatal(err)
	}
	s.mu.Lock()
	nl, np, ns := len(s.leases), len(s.pins), len(s.sessions)
	s.mu.Unlock()
	if nl != 1 || np != 0 || ns != 0 {
		t.Errorf("after sweep: %d leases, %d pins, %d sessions; want 1, 0, 0", nl, np, ns)
	}
	if _, err := s.Renew(ctx, live, time.Hour); err != nil {
		t.Errorf("sweep dropped a live lease: %v", err)
	}
}

func TestUnclaimDropsEmptyEntry(t *testing.T) {
	ctx := context.Background()
	s, clk := newFakeStore(t)
	if ok, err := s.Claim(ctx, "d", clk.Now(), time.Hour); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if err := s.Unclaim(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	n := len(s.pins)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d pin entries left after unclaim of an unpinned digest", n)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	ctx := context.Background()
	s := New()
	l, err := s.Acquire(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{
		"Acquire": func() error { _, err := s.Acquire(ctx, "k", time.Minute); return err }(),
		"Renew":   func() error { _, err := s.Renew(ctx, l, time.Minute); return err }(),
		"Release": s.Release(ctx, l),
		"Pin":     s.Pin(ctx, "d"),
		"Claim":   func() error { _, err := s.Claim(ctx, "d", time.Now(), time.Minute); return err }(),
		"Unclaim": s.Unclaim(ctx, "d"),
		"Create":  s.Create(ctx, "s", nil, time.Minute),
		"Get":     func() error { _, err := s.Get(ctx, "s"); return err }(),
		"Update":  s.Update(ctx, l, "s", nil, time.Minute),
		"Delete":  s.Delete(ctx, "s"),
	}
	for name, err := range calls {
		if !errors.Is(err, locking.ErrUnavailable) {
			t.Errorf("%s after Close: %v, want ErrUnavailable", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRecordsAreCopied(t *testing.T) {
	ctx := context.Background()
	s, _ := newFakeStore(t)
	buf := []byte("abc")
	if err := s.Create(ctx, "s", buf, time.Minute); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	got, err := s.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	got[1] = 'Y'
	again, _ := s.Get(ctx, "s")
	if string(again) != "abc" {
		t.Errorf("record = %q, want abc: the store shares memory with its callers", again)
	}
}
