package gcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	gcs "cloud.google.com/go/storage"

	"github.com/stratus-registry/stratus/storage"
)

// Put implements storage.Driver. The body streams through the client's
// upload buffer (at most chunk_size): a body that fits goes up in one
// request, a larger one as a resumable upload in chunk_size requests. A
// reader sees the old object until the upload is finalized.
//
// Create-only writes carry ifGenerationMatch=0 (DoesNotExist), which makes
// them idempotent, so the client retries them: a retry of a write that GCS
// applied but whose answer was lost gets 412, reported as ErrExists, and
// the registry reads the object back to see that it is its own. Plain
// writes set the key to the body's bytes, which is idempotent too, so they
// are retried as well (RetryAlways).
func (d *Driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	if err := d.checkKey("put", key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: err}
	}
	obj := d.object(key)
	if opts.CreateOnly {
		obj = obj.If(gcs.Conditions{DoesNotExist: true})
	} else {
		obj = obj.Retryer(gcs.WithPolicy(gcs.RetryAlways))
	}
	body := storage.ContextReader(ctx, r)
	if opts.Size >= 0 {
		// One byte more than promised, to notice a longer body.
		body = io.LimitReader(body, opts.Size+1)
	}
	attrs, n, err := d.upload(ctx, obj, body, d.chunkFor(opts.Size), opts.ContentType, func(n int64) error {
		if opts.Size >= 0 && n != opts.Size {
			return fmt.Errorf("body is %d bytes or more, size says %d", n, opts.Size)
		}
		return nil
	})
	if err != nil {
		return storage.Info{}, d.putError("put", key, err)
	}
	info := infoOf(key, attrs)
	info.Size = n
	return info, nil
}

// chunkFor is the upload buffer for a body of size bytes (-1: unknown):
// just above the size when it fits, so the body goes in one request
// without a chunk_size allocation.
func (d *Driver) chunkFor(size int64) int {
	limit := int64(d.cfg.ChunkSize)
	if size < 0 || size >= limit {
		return int(limit)
	}
	return int((size/chunkQuantum + 1) * chunkQuantum)
}

// bodyError is a failure of the caller's stream, not of the store.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// upload writes body to obj with a Writer whose context is cancelled when
// the body fails, so that nothing is finalized. check sees the byte count
// before the upload is finalized and can refuse it.
func (d *Driver) upload(ctx context.Context, obj *gcs.ObjectHandle, body io.Reader, chunk int, contentType string, check func(int64) error) (*gcs.ObjectAttrs, int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := obj.NewWriter(wctx)
	w.ChunkSize = chunk
	w.ContentType = contentType
	w.ForceEmptyContentType = contentType == ""
	w.KMSKeyName = d.cfg.KMSKeyName
	bp := d.bufs.Get().(*[]byte)
	src := &trackingReader{r: body}
	n, err := io.CopyBuffer(w, src, *bp)
	d.bufs.Put(bp)
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case src.err != nil:
		err = &bodyError{src.err}
	case err == nil:
		if cerr := check(n); cerr != nil {
			err = &bodyError{cerr}
		}
	}
	if err != nil {
		cancel() // abandons the upload; Close then only reports it
		w.Close()
		return nil, n, err
	}
	if err := w.Close(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, n, cerr
		}
		return nil, n, err
	}
	return w.Attrs(), n, nil
}

// trackingReader remembers the body's own failure, so that it is told
// apart from the Writer's. It hides the body's WriteTo, so the copy goes in
// buffer steps.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// putError wraps an upload failure: body failures as they are, store
// failures classified.
func (d *Driver) putError(op, key string, err error) error {
	var be *bodyError
	if errors.As(err, &be) {
		return &storage.OpError{Op: op, Driver: driverName, Key: key, Err: be.err}
	}
	return opError(op, key, err)
}

// randomID names the temporary objects of a multipart write.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
