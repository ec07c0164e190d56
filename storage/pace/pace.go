// Package pace wraps a storage.Driver so that its requests start no faster
// than a limiter allows. Garbage collection runs next to the requests it
// must not starve (on a small machine, in the same process or on the same
// cores as the object store): a pass paced to a request rate spreads its
// listing, reads and deletes over time instead of taking every core for
// as long as it runs (docs/architecture.md, "Garbage collection").
//
// Every request the wrapped driver answers takes one token before it
// starts: Stat, Reader (the stream itself is not paced), Put, List,
// Delete, DeleteBatch (one store request for the whole batch),
// NewMultipart, ResumeMultipart and the reaper's AbortStale. Parts written
// through a multipart writer are not paced: GC never writes one.
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

// Wrap returns d with every request paced by l; the result has exactly
// d's optional capabilities (driverwrap).
func Wrap(d storage.Driver, l Limiter) storage.Driver {
	p := &driver{next: d, l: l}
	return driverwrap.Compose(p, d, driverwrap.Hooks{AbortStale: p.abortStale})
}

type driver struct {
	next storage.Driver
	l    Limiter
}

func (d *driver) Name() string { return d.next.Name() }

func (d *driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := d.l.Wait(ctx); err != nil {
		return storage.Info{}, err
	}
	return d.next.Stat(ctx, key)
}

func (d *driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := d.l.Wait(ctx); err != nil {
		return nil, err
	}
	return d.next.Reader(ctx, key, offset, length)
}

func (d *driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	if err := d.l.Wait(ctx); err != nil {
		return storage.Info{}, err
	}
	return d.next.Put(ctx, key, r, opts)
}

func (d *driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if err := d.l.Wait(ctx); err != nil {
		return storage.ListPage{}, err
	}
	return d.next.List(ctx, prefix, startAfter, limit)
}

func (d *driver) Delete(ctx context.Context, key string) error {
	if err := d.l.Wait(ctx); err != nil {
		return err
	}
	return d.next.Delete(ctx, key)
}

func (d *driver) DeleteBatch(ctx context.Context, keys []string) error {
	if err := d.l.Wait(ctx); err != nil {
		return err
	}
	return d.next.DeleteBatch(ctx, keys)
}

func (d *driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	if err := d.l.Wait(ctx); err != nil {
		return nil, err
	}
	return d.next.NewMultipart(ctx, key)
}

func (d *driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	if err := d.l.Wait(ctx); err != nil {
		return nil, err
	}
	return d.next.ResumeMultipart(ctx, handle)
}

func (d *driver) Close() error { return d.next.Close() }

// Unwrap returns the paced driver (driverwrap.Unwrap).
func (d *driver) Unwrap() storage.Driver { return d.next }

func (d *driver) abortStale(ctx context.Context, r storage.MultipartReaper, cutoff time.Time, dryRun bool) (int, error) {
	if err := d.l.Wait(ctx); err != nil {
		return 0, err
	}
	return r.AbortStale(ctx, cutoff, dryRun)
}
