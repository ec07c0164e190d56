package lockingtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// ActivityBackend is one activity store as two replicas see it.
type ActivityBackend struct {
	// A and B are two clients of one backend (an in-process store is one
	// client, given twice).
	A, B locking.Activity
	// Kill makes the backend unreachable for both clients for the rest
	// of the test.
	Kill func() error
}

// RunActivity runs the conformance tests of locking.Activity. newBackend
// is called once per subtest and returns a backend no other subtest
// counts into (the count is one per backend, not per key).
func RunActivity(t *testing.T, newBackend func(t *testing.T) ActivityBackend) {
	ctx := context.Background()

	t.Run("an idle backend reads zero", func(t *testing.T) {
		b := newBackend(t)
		if n, err := b.A.RecentActivity(ctx, 2*time.Second); err != nil || n != 0 {
			t.Fatalf("RecentActivity of a fresh backend = %d, %v; want 0", n, err)
		}
	})

	t.Run("counts from two clients add up", func(t *testing.T) {
		b := newBackend(t)
		const adds = 40
		var wg sync.WaitGroup
		errs := make(chan error, 2*adds)
		for _, c := range []locking.Activity{b.A, b.B} {
			wg.Go(func() {
				for range adds {
					errs <- c.AddActivity(ctx, 3)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("AddActivity: %v", err)
			}
		}
		// The whole remembered window: the adds may straddle seconds.
		for name, c := range map[string]locking.Activity{"A": b.A, "B": b.B} {
			if n, err := c.RecentActivity(ctx, locking.ActivityKeep); err != nil || n != 2*adds*3 {
				t.Errorf("RecentActivity read by %s = %d, %v; want %d", name, n, err, 2*adds*3)
			}
		}
		if err := b.A.AddActivity(ctx, 0); err != nil {
			t.Errorf("AddActivity of zero: %v", err)
		}
	})

	t.Run("old counts leave the window", func(t *testing.T) {
		b := newBackend(t)
		if err := b.A.AddActivity(ctx, 5); err != nil {
			t.Fatal(err)
		}
		if n, err := b.B.RecentActivity(ctx, time.Second); err != nil || n != 5 {
			t.Fatalf("RecentActivity right after the add = %d, %v; want 5", n, err)
		}
		// A one-second window covers at most two seconds of buckets.
		eventually(t, "the count to leave a 1s window", func() (bool, string) {
			n, err := b.B.RecentActivity(ctx, time.Second)
			if err != nil {
				t.Fatalf("RecentActivity: %v", err)
			}
			return n == 0, fmt.Sprint(n)
		})
		if n, err := b.B.RecentActivity(ctx, locking.ActivityKeep); err != nil || n != 5 {
			t.Errorf("RecentActivity over the whole kept window = %d, %v; want 5 still", n, err)
		}
	})

	t.Run("invalid arguments are refused", func(t *testing.T) {
		b := newBackend(t)
		calls := []struct {
			name string
			call func() error
		}{
			{"negative count", func() error { return b.A.AddActivity(ctx, -1) }},
			{"zero window", func() error { _, err := b.A.RecentActivity(ctx, 0); return err }},
			{"window beyond ActivityKeep", func() error {
				_, err := b.A.RecentActivity(ctx, locking.ActivityKeep+time.Second)
				return err
			}},
		}
		for _, c := range calls {
			if err := c.call(); !errors.Is(err, locking.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", c.name, err)
			}
		}
	})

	t.Run("a cancelled context returns promptly", func(t *testing.T) {
		b := newBackend(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.A.AddActivity(cctx, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("AddActivity with a cancelled context: %v, want context.Canceled", err)
		}
		if _, err := b.A.RecentActivity(cctx, time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("RecentActivity with a cancelled context: %v, want context.Canceled", err)
		}
	})

	t.Run("a dead backend is unavailable", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		dctx, cancel := context.WithTimeout(ctx, waitMax)
		defer cancel()
		if err := b.A.AddActivity(dctx, 1); !errors.Is(err, locking.ErrUnavailable) {
			t.Errorf("AddActivity on a dead backend: %v, want ErrUnavailable", err)
		}
		if _, err := b.B.RecentActivity(dctx, time.Second); !errors.Is(err, locking.ErrUnavailable) {
			t.Errorf("RecentActivity on a dead backend: %v, want ErrUnavailable", err)
		}
	})
}
