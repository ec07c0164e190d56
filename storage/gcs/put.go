package gcs

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	gcs "cloud.google.com/go/storage"

	"github.com/stratus-registry/stratus/storage"
)

// smallPut is the largest body of known size that Put reads into a buffer
// of its own size rather than a pooled chunk_size one.
const smallPut = 1 << 20

// Put implements storage.Driver. A body that fits in one chunk is read
// into memory and sent in one request, retried by the driver (see
// retryUpload); a larger one streams as a resumable upload in chunk_size
// requests, which the client retries chunk by chunk. A reader sees the old
// object until the upload is finalized.
//
// Create-only writes carry ifGenerationMatch=0 (DoesNotExist): a retry of
// a write that GCS applied but whose answer was lost gets 412, reported as
// ErrExists, and the registry reads the object back to see that it is its
// own. Plain writes set the key to the body's bytes, which is idempotent,
// so they are retried too.
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
	}
	body := &trackingReader{r: storage.ContextReader(ctx, r)}
	var buf []byte
	if opts.Size >= 0 && opts.Size <= smallPut {
		buf = make([]byte, opts.Size)
	} else {
		bp := d.getBuf()
		defer d.putBuf(bp)
		buf = *bp
	}
	n, more, err := storage.FillBuffer(body, buf, opts.Size)
	switch {
	case err == nil && more:
		// The buffer is full and more may follow: stream.
		attrs, total, err := d.putStream(ctx, obj, buf, body, opts)
		if err != nil {
			return storage.Info{}, d.putError("put", key, err)
		}
		info := infoOf(key, attrs)
		info.Size = total
		return info, nil
	case err != nil && ctx.Err() != nil:
		return storage.Info{}, d.putError("put", key, ctx.Err())
	case err != nil:
		return storage.Info{}, d.putError("put", key, &bodyError{err})
	}
	attrs, err := d.uploadBytes(ctx, obj, buf[:n], opts.ContentType)
	if err != nil {
		return storage.Info{}, d.putError("put", key, err)
	}
	return infoOf(key, attrs), nil
}

// putStream sends first (a full chunk already read) and the rest of body
// as one resumable upload. The Writer's context is cancelled when the body
// fails, so that nothing is finalized.
func (d *Driver) putStream(ctx context.Context, obj *gcs.ObjectHandle, first []byte, body *trackingReader, opts storage.PutOptions) (*gcs.ObjectAttrs, int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	switch {
	case d.cfg.maxAttempts() == 1:
		obj = obj.Retryer(gcs.WithPolicy(gcs.RetryNever))
	case !opts.CreateOnly:
		obj = obj.Retryer(gcs.WithPolicy(gcs.RetryAlways))
	}
	w := d.newWriter(wctx, obj, int(d.cfg.ChunkSize), opts.ContentType)
	// Chunk retries end after this long; the client does not count them.
	w.ChunkRetryDeadline = max(32*time.Second, d.cfg.RequestTimeout*time.Duration(d.cfg.maxAttempts()))
	total := int64(len(first))
	_, err := w.Write(first)
	if err == nil {
		var n int64
		n, err = io.Copy(w, body)
		total += n
	}
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case body.err != nil:
		err = &bodyError{body.err}
	case err == nil:
		if serr := storage.CheckBodySize(total, opts.Size); serr != nil {
			err = &bodyError{serr}
		}
	}
	if err != nil {
		cancel() // abandons the upload; Close then only reports it
		w.Close()
		return nil, total, err
	}
	if err := w.Close(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, total, cerr
		}
		return nil, total, err
	}
	return w.Attrs(), total, nil
}

func (d *Driver) newWriter(ctx context.Context, obj *gcs.ObjectHandle, chunk int, contentType string) *gcs.Writer {
	w := obj.NewWriter(ctx)
	w.ChunkSize = chunk
	w.ContentType = contentType
	w.ForceEmptyContentType = contentType == ""
	w.KMSKeyName = d.cfg.KMSKeyName
	return w
}

// uploadBytes writes data as obj in one request (ChunkSize 0: the client
// keeps no copy, and does not retry), retried by retryUpload.
func (d *Driver) uploadBytes(ctx context.Context, obj *gcs.ObjectHandle, data []byte, contentType string) (*gcs.ObjectAttrs, error) {
	var attrs *gcs.ObjectAttrs
	err := d.retryUpload(ctx, func() error {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		w := d.newWriter(wctx, obj, 0, contentType)
		if _, err := w.Write(data); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		attrs = w.Attrs()
		return nil
	})
	return attrs, err
}

// retryUpload runs one single-request upload up to max_retries+1 times
// while it fails transiently, with jittered exponential backoff. The
// client retries such uploads only until the context's deadline, counting
// no attempts, so the driver bounds them itself. Every caller's upload is
// idempotent: the same bytes to the same name, or create-only, whose retry
// after a lost answer is a 412 that the caller reads as ErrExists.
func (d *Driver) retryUpload(ctx context.Context, attempt func() error) error {
	pause := 100 * time.Millisecond
	for i := 1; ; i++ {
		err := attempt()
		if err == nil || i >= d.cfg.maxAttempts() || !storage.Retryable(classify(err)) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		jittered := pause/2 + rand.N(pause/2+1)
		d.logger.Debug("retrying an upload", "attempt", i, "pause", jittered, "error", err)
		t := time.NewTimer(jittered)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// bodyError is a failure of the caller's stream, not of the store.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// trackingReader remembers the body's own failure, so that it is told
// apart from the Writer's. It hides the body's WriteTo, so copies go in
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
