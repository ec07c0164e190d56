// Package pace wraps a storage.Driver so that its requests start no faster
// than a limiter or a gate allows. Garbage collection runs next to the requests it
// must not starve (on a small machine, in the same process or on the same
// cores as the object store): a pass paced to a request rate spreads its
// listing, reads and deletes over time instead of taking every core for
// as long as it runs (docs/architecture.md, "Garbage collection").
//
// Every request the wrapped driver answers passes a Gate before it starts
// and tells the gate when it ended: a Limiter (Wrap) hands out one token
// per request, a Yielder (WrapGate, yield.go) keeps GC to a share of the
// store's time while the registry serves. Paced requests are Stat, Reader
// (until the store answers; the stream itself is not paced, and a reader
// GC holds open must not keep its other requests out), Put, List, Delete,
// DeleteBatch (one store request for the whole batch), NewMultipart,
// ResumeMultipart and the reaper's AbortStale. Parts written through a
// multipart writer are not paced: GC never writes one.
package pace

import (
	"context"
	"io"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/driverwrap"
)

// Limiter hands out tokens; *rate.Limiter (golang.org/x/time/rate) is one.
type Limiter interface {
	// Wait blocks until a token is available or ctx ends.
	Wait(ctx context.Context) error
}

// Gate admits one request at a time into the store and is told when it
// ended, so it can pace by how long requests take, not only by how many
// start: a listing page costs the store far more than a small read.
type Gate interface {
	// Enter blocks until the request may start or ctx ends. On success the
	// caller calls done exactly once, when the store has answered.
	Enter(ctx context.Context) (done func(), err error)
}

// Wrap returns d with every request paced by l; the result has exactly
// d's optional capabilities (driverwrap).
func Wrap(d storage.Driver, l Limiter) storage.Driver {
	return WrapGate(d, limiterGate{l})
}

// WrapGate returns d with every request admitted by g; the result has
// exactly d's optional capabilities (driverwrap).
func WrapGate(d storage.Driver, g Gate) storage.Driver {
	p := &driver{next: d, g: g}
	return driverwrap.Compose(p, d, driverwrap.Hooks{AbortStale: p.abortStale})
}

// limiterGate is a Limiter as a Gate: a token per request, whatever it
// costs.
type limiterGate struct{ l Limiter }

func (g limiterGate) Enter(ctx context.Context) (func(), error) {
	if err := g.l.Wait(ctx); err != nil {
		return nil, err
	}
	return func() {}, nil
}

type driver struct {
	next storage.Driver
	g    Gate
}

func (d *driver) Name() string { return d.next.Name() }

func (d *driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return storage.Info{}, err
	}
	defer done()
	return d.next.Stat(ctx, key)
}

func (d *driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return d.next.Reader(ctx, key, offset, length)
}

func (d *driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return storage.Info{}, err
	}
	defer done()
	return d.next.Put(ctx, key, r, opts)
}

func (d *driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return storage.ListPage{}, err
	}
	defer done()
	return d.next.List(ctx, prefix, startAfter, limit)
}

func (d *driver) Delete(ctx context.Context, key string) error {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	return d.next.Delete(ctx, key)
}

func (d *driver) DeleteBatch(ctx context.Context, keys []string) error {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	return d.next.DeleteBatch(ctx, keys)
}

func (d *driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return d.next.NewMultipart(ctx, key)
}

func (d *driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return d.next.ResumeMultipart(ctx, handle)
}

func (d *driver) Close() error { return d.next.Close() }

// Unwrap returns the paced driver (driverwrap.Unwrap).
func (d *driver) Unwrap() storage.Driver { return d.next }

func (d *driver) abortStale(ctx context.Context, r storage.MultipartReaper, cutoff time.Time, dryRun bool) (int, error) {
	done, err := d.g.Enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	return r.AbortStale(ctx, cutoff, dryRun)
}
