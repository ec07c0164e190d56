package pace_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/pace"
)

// The wrapper meets the driver contract (an unlimited rate: the suite
// checks forwarding, not timing).
func TestDriverSuiteThroughPace(t *testing.T) {
	shared := inmemory.New()
	drivertest.RunWith(t, func(t *testing.T) storage.Driver {
		d := pace.Wrap(shared.Clone(), rate.NewLimiter(rate.Inf, 1))
		t.Cleanup(func() { _ = d.Close() })
		return d
	}, drivertest.Config{SkipBoundedMemory: true, LargeSize: 8 << 20})
}

// counting is a Limiter that counts tokens, and refuses them once closed.
type counting struct {
	n      atomic.Int64
	refuse atomic.Bool
}

var errNoToken = errors.New("no token")

func (c *counting) Wait(ctx context.Context) error {
	if c.refuse.Load() {
		return errNoToken
	}
	c.n.Add(1)
	return ctx.Err()
}

// Each request takes exactly one token, a batch delete included; and a
// request whose token is refused never reaches the driver.
func TestEveryRequestTakesOneToken(t *testing.T) {
	ctx := context.Background()
	inner := inmemory.New()
	t.Cleanup(func() { inner.Close() })
	put := func(key string) {
		if _, err := inner.Put(ctx, key, strings.NewReader("x"), storage.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	ops := []struct {
		name string
		call func(d storage.Driver) error
	}{
		{"Stat", func(d storage.Driver) error { _, err := d.Stat(ctx, "k/a"); return err }},
		{"Reader", func(d storage.Driver) error {
			r, err := d.Reader(ctx, "k/a", 0, -1)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, r)
			return errors.Join(err, r.Close())
		}},
		{"Put", func(d storage.Driver) error {
			_, err := d.Put(ctx, "k/b", strings.NewReader("y"), storage.PutOptions{Size: 1})
			return err
		}},
		{"List", func(d storage.Driver) error { _, err := d.List(ctx, "k/", "", 0); return err }},
		{"Delete", func(d storage.Driver) error { return d.Delete(ctx, "k/b") }},
		{"DeleteBatch of three", func(d storage.Driver) error { return d.DeleteBatch(ctx, []string{"k/c", "k/d", "k/e"}) }},
		{"NewMultipart", func(d storage.Driver) error {
			m, err := d.NewMultipart(ctx, "k/m")
			if err != nil {
				return err
			}
			return m.Abort(ctx)
		}},
		{"AbortStale", func(d storage.Driver) error {
			r, ok := d.(storage.MultipartReaper)
			if !ok {
				return errors.New("the wrapper hid the in-memory driver's reaper")
			}
			_, err := r.AbortStale(ctx, time.Now(), true)
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			put("k/a")
			for _, k := range []string{"k/c", "k/d", "k/e"} {
				put(k)
			}
			l := &counting{}
			d := pace.Wrap(inner.Clone(), l)
			if err := op.call(d); err != nil {
				t.Fatal(err)
			}
			if got := l.n.Load(); got != 1 {
				t.Errorf("%s took %d tokens, want 1", op.name, got)
			}
		})
	}
	t.Run("a refused token stops the request", func(t *testing.T) {
		l := &counting{}
		l.refuse.Store(true)
		d := pace.Wrap(inner.Clone(), l)
		if _, err := d.Put(ctx, "k/refused", strings.NewReader("z"), storage.PutOptions{Size: 1}); !errors.Is(err, errNoToken) {
			t.Fatalf("Put with no token: %v, want the limiter's error", err)
		}
		if _, err := inner.Stat(ctx, "k/refused"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the refused Put reached the driver: Stat = %v", err)
		}
	})
}
