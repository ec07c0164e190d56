package lockingtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

func runLeases(t *testing.T, newStore func(t *testing.T) locking.Store) {
	t.Run("second acquirer gets ErrHeld", func(t *testing.T) {
		s := newStore(t)
		key := randKey("lease")
		before := time.Now()
		a := mustAcquire(t, s, key, longTTL)
		if a.Key != key || a.Holder == "" || a.Token == 0 {
			t.Errorf("lease = %+v, want key %q, a holder and a non-zero token", a, key)
		}
		if !a.Expires.After(before) || a.Expires.After(time.Now().Add(longTTL)) {
			t.Errorf("Expires = %v, want within (call start, now+ttl]", a.Expires)
		}
		if _, err := s.Acquire(context.Background(), key, longTTL); !errors.Is(err, locking.ErrHeld) {
			t.Errorf("second Acquire: %v, want ErrHeld", err)
		}
		// A different key is independent.
		mustAcquire(t, s, randKey("lease"), longTTL)
	})

	t.Run("release lets the next acquirer in with a larger token", func(t *testing.T) {
		s := newStore(t)
		key := randKey("lease")
		a := mustAcquire(t, s, key, longTTL)
		if err := s.Release(context.Background(), a); err != nil {
			t.Fatalf("Release: %v", err)
		}
		b := mustAcquire(t, s, key, longTTL)
		if b.Token <= a.Token {
			t.Errorf("token after release %d, want > %d", b.Token, a.Token)
		}
		if b.Holder == a.Holder {
			t.Errorf("holder %q reused across acquisitions", b.Holder)
		}
	})

	t.Run("renew extends the lease", func(t *testing.T) {
		s := newStore(t)
		key := randKey("lease")
		a := mustAcquire(t, s, key, shortTTL)
		r, err := s.Renew(context.Background(), a, longTTL)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if r.Key != a.Key || r.Token != a.Token || r.Holder != a.Holder {
			t.Errorf("Renew changed the lease identity: %+v -> %+v", a, r)
		}
		if !r.Expires.After(a.Expires) {
			t.Errorf("Renew Expires %v, want after %v", r.Expires, a.Expires)
		}
		// Past the first ttl the renewed lease must still hold.
		time.Sleep(2 * shortTTL)
		if _, err := s.Acquire(context.Background(), key, longTTL); !errors.Is(err, locking.ErrHeld) {
			t.Errorf("Acquire after the original ttl of a renewed lease: %v, want ErrHeld", err)
		}
		if err := s.Release(context.Background(), r); err != nil {
			t.Errorf("Release of the renewed lease: %v", err)
		}
	})

	t.Run("renew and release after expiry fail with ErrLost", func(t *testing.T) {
		s := newStore(t)
		a := mustAcquire(t, s, randKey("lease"), shortTTL)
		b := mustAcquire(t, s, randKey("lease"), shortTTL)
		// The backend set the expiry before Acquire returned, so after two
		// ttls it has passed whatever the machine's speed.
		time.Sleep(2 * shortTTL)
		if _, err := s.Renew(context.Background(), a, longTTL); !errors.Is(err, locking.ErrLost) {
			t.Errorf("Renew after expiry: %v, want ErrLost", err)
		}
		if err := s.Release(context.Background(), b); !errors.Is(err, locking.ErrLost) {
			t.Errorf("Release after expiry: %v, want ErrLost", err)
		}
	})

	t.Run("expired lease is taken over and the stale holder is fenced", func(t *testing.T) {
		s := newStore(t)
		key := randKey("lease")
		a := mustAcquire(t, s, key, shortTTL)
		b := takeOver(t, s, key, longTTL)
		if b.Token <= a.Token {
			t.Errorf("takeover token %d, want > %d", b.Token, a.Token)
		}
		if _, err := s.Renew(context.Background(), a, longTTL); !errors.Is(err, locking.ErrLost) {
			t.Errorf("stale Renew: %v, want ErrLost", err)
		}
		if err := s.Release(context.Background(), a); !errors.Is(err, locking.ErrLost) {
			t.Errorf("stale Release: %v, want ErrLost", err)
		}
		// The stale calls must not have disturbed the new holder.
		if _, err := s.Acquire(context.Background(), key, longTTL); !errors.Is(err, locking.ErrHeld) {
			t.Errorf("Acquire after stale calls: %v, want ErrHeld", err)
		}
		if _, err := s.Renew(context.Background(), b, longTTL); err != nil {
			t.Errorf("new holder's Renew: %v", err)
		}
		if err := s.Release(context.Background(), b); err != nil {
			t.Errorf("new holder's Release: %v", err)
		}
	})

	t.Run("only the holder can release", func(t *testing.T) {
		s := newStore(t)
		key := randKey("lease")
		a := mustAcquire(t, s, key, longTTL)
		forged := []struct {
			name  string
			lease locking.Lease
		}{
			{"other holder", locking.Lease{Key: key, Token: a.Token, Holder: a.Holder + "x", Expires: a.Expires}},
			{"other token", locking.Lease{Key: key, Token: a.Token + 1, Holder: a.Holder, Expires: a.Expires}},
			{"zero lease on the key", locking.Lease{Key: key}},
			{"lease of another key", locking.Lease{Key: randKey("lease"), Token: a.Token, Holder: a.Holder}},
		}
		for _, f := range forged {
			if err := s.Release(context.Background(), f.lease); !errors.Is(err, locking.ErrLost) {
				t.Errorf("Release by %s: %v, want ErrLost", f.name, err)
			}
			if _, err := s.Renew(context.Background(), f.lease, longTTL); !errors.Is(err, locking.ErrLost) {
				t.Errorf("Renew by %s: %v, want ErrLost", f.name, err)
			}
		}
		if _, err := s.Acquire(context.Background(), key, longTTL); !errors.Is(err, locking.ErrHeld) {
			t.Errorf("a forged Release freed the lease: Acquire = %v", err)
		}
		if err := s.Release(context.Background(), a); err != nil {
			t.Fatalf("Release by the holder: %v", err)
		}
		if err := s.Release(context.Background(), a); !errors.Is(err, locking.ErrLost) {
			t.Errorf("second Release: %v, want ErrLost", err)
		}
	})

	t.Run("tokens strictly increase across acquisitions and takeovers", func(t *testing.T) {
		s := newStore(t)
		key := randKey("lease")
		var last uint64
		check := func(how string, l locking.Lease) {
			t.Helper()
			if l.Token <= last {
				t.Errorf("%s: token %d after %d", how, l.Token, last)
			}
			last = l.Token
		}
		for i := range 5 {
			l := mustAcquire(t, s, key, longTTL)
			check("acquire", l)
			// Other keys' activity in between must not matter.
			mustAcquire(t, s, randKey("lease"), longTTL)
			if i%2 == 0 {
				if err := s.Release(context.Background(), l); err != nil {
					t.Fatal(err)
				}
				continue
			}
			// Let it lapse into a takeover instead of releasing.
			if _, err := s.Renew(context.Background(), l, shortTTL); err != nil {
				t.Fatal(err)
			}
			n := takeOver(t, s, key, longTTL)
			check("takeover", n)
			if err := s.Release(context.Background(), n); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("mutual exclusion under contention", func(t *testing.T) {
		testMutualExclusion(t, newStore(t))
	})
}

// testMutualExclusion has goroutines compete for one key and checks, with a
// counter only holders touch, that no two ever hold it at once, and that
// the tokens the holders see only grow.
func testMutualExclusion(t *testing.T, s locking.Store) {
	const (
		workers = 8
		rounds  = 25 // successful acquisitions per worker
	)
	key := randKey("contended")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		holders   atomic.Int32
		lastToken atomic.Uint64
		overlaps  atomic.Int32
		wg        sync.WaitGroup
		errMu     sync.Mutex
		errs      []error
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	for range workers {
		wg.Go(func() {
			for done := 0; done < rounds; {
				if ctx.Err() != nil {
					fail(errors.New("contention test ran out of time"))
					return
				}
				l, err := s.Acquire(ctx, key, longTTL)
				if errors.Is(err, locking.ErrHeld) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					fail(err)
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				if prev := lastToken.Swap(l.Token); l.Token <= prev {
					fail(errors.New("token did not increase under contention"))
				}
				time.Sleep(100 * time.Microsecond) // widen the window an overlap would need
				holders.Add(-1)
				if err := s.Release(ctx, l); err != nil {
					fail(err)
					return
				}
				done++
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d times two holders held the lease at once", n)
	}
	for _, err := range errs {
		t.Error(err)
	}
}
