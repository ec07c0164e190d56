// Package tracing wraps a storage.Driver with OpenTelemetry spans: one
// client span per driver operation, named "storage.<op>" (the operation
// names of storage/instrument), carrying the driver name, the key and, for
// writes and reads, the bytes moved.
//
// Spans are children of the span in the caller's context. An operation
// with no span in its context (GC, the upload reaper, the startup probe)
// is not traced: a root span per stat would flood a trace backend with
// one-span traces that say nothing.
//
// Errors are recorded on the span and set its status, except the answers
// storage/instrument does not count as failures (not found, a lost
// create-only race, a cancelled caller).
//
// The wrapper exposes exactly the optional capabilities of the wrapped
// driver (storage/driverwrap). It is installed only when tracing is on.
package tracing

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/driverwrap"
	"github.com/stratus-registry/stratus/storage/instrument"
)

// Attribute keys.
const (
	AttrDriver = attribute.Key("stratus.storage.driver")
	AttrOp     = attribute.Key("stratus.storage.op")
	AttrKey    = attribute.Key("stratus.storage.key")
	AttrBytes  = attribute.Key("stratus.storage.bytes")
)

// Wrap returns d traced with t. The result implements the same optional
// capabilities as d, and no others.
func Wrap(d storage.Driver, t trace.Tracer) storage.Driver {
	b := &driver{next: d, tracer: t, name: d.Name()}
	return driverwrap.Compose(b, d, driverwrap.Hooks{SignedURL: b.signedURL, AbortStale: b.abortStale})
}

type driver struct {
	next   storage.Driver
	tracer trace.Tracer
	name   string
}

// start opens the operation's span, or returns nil when ctx carries none
// to be a child of.
func (d *driver) start(ctx context.Context, op, key string) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{AttrDriver.String(d.name), AttrOp.String(op)}
	if key != "" {
		attrs = append(attrs, AttrKey.String(key))
	}
	return d.tracer.Start(ctx, "storage."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// end records err (when it is a failure) and closes span; nil is a no-op.
func end(span trace.Span, err error, extra ...attribute.KeyValue) {
	if span == nil {
		return
	}
	span.SetAttributes(extra...)
	if instrument.Failure(err) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (d *driver) Name() string { return d.name }

func (d *driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	ctx, span := d.start(ctx, instrument.OpStat, key)
	info, err := d.next.Stat(ctx, key)
	end(span, err)
	return info, err
}

func (d *driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	ctx, span := d.start(ctx, instrument.OpRead, key)
	rc, err := d.next.Reader(ctx, key, offset, length)
	if err != nil || span == nil {
		end(span, err)
		return rc, err
	}
	return &reader{rc: rc, span: span}, nil
}

func (d *driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	ctx, span := d.start(ctx, instrument.OpPut, key)
	info, err := d.next.Put(ctx, key, r, opts)
	end(span, err, AttrBytes.Int64(info.Size))
	return info, err
}

func (d *driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	ctx, span := d.start(ctx, instrument.OpList, prefix)
	page, err := d.next.List(ctx, prefix, startAfter, limit)
	end(span, err, attribute.Int("stratus.storage.objects", len(page.Objects)))
	return page, err
}

func (d *driver) Delete(ctx context.Context, key string) error {
	ctx, span := d.start(ctx, instrument.OpDelete, key)
	err := d.next.Delete(ctx, key)
	end(span, err)
	return err
}

func (d *driver) DeleteBatch(ctx context.Context, keys []string) error {
	ctx, span := d.start(ctx, instrument.OpDeleteBatch, "")
	err := d.next.DeleteBatch(ctx, keys)
	end(span, err, attribute.Int("stratus.storage.objects", len(keys)))
	return err
}

func (d *driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	ctx, span := d.start(ctx, instrument.OpNewMultipart, key)
	mp, err := d.next.NewMultipart(ctx, key)
	end(span, err)
	if err != nil {
		return nil, err
	}
	return &multipart{next: mp, d: d}, nil
}

func (d *driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	ctx, span := d.start(ctx, instrument.OpResumeMultipart, "")
	mp, err := d.next.ResumeMultipart(ctx, handle)
	end(span, err)
	if err != nil {
		return nil, err
	}
	return &multipart{next: mp, d: d}, nil
}

func (d *driver) Close() error { return d.next.Close() }

// Unwrap returns the traced driver.
func (d *driver) Unwrap() storage.Driver { return d.next }

func (d *driver) signedURL(ctx context.Context, s storage.URLSigner, key string, ttl time.Duration) (string, error) {
	ctx, span := d.start(ctx, instrument.OpSignedURL, key)
	u, err := s.SignedURL(ctx, key, ttl)
	end(span, err)
	return u, err
}

func (d *driver) abortStale(ctx context.Context, r storage.MultipartReaper, cutoff time.Time, dryRun bool) (int, error) {
	ctx, span := d.start(ctx, instrument.OpAbortStale, "")
	n, err := r.AbortStale(ctx, cutoff, dryRun)
	end(span, err, attribute.Int("stratus.storage.aborted", n))
	return n, err
}

// reader keeps the read's span open until Close: a stream is one
// operation however long it runs.
type reader struct {
	rc   io.ReadCloser
	span trace.Span
	n    int64
	once sync.Once
	// err is the first read error other than io.EOF; Read and Close are
	// not concurrent (io.ReadCloser's contract).
	err error
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *reader) Close() error {
	err := r.rc.Close()
	r.once.Do(func() { end(r.span, errors.Join(r.err, err), AttrBytes.Int64(r.n)) })
	return err
}

// multipart traces a resumable write's operations.
type multipart struct {
	next storage.Multipart
	d    *driver
}

func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	ctx, span := m.d.start(ctx, instrument.OpAppend, "")
	n, err := m.next.Append(ctx, r)
	end(span, err, AttrBytes.Int64(n))
	return n, err
}

func (m *multipart) Size() int64             { return m.next.Size() }
func (m *multipart) Handle() ([]byte, error) { return m.next.Handle() }

func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	ctx, span := m.d.start(ctx, instrument.OpCommit, "")
	info, err := m.next.Commit(ctx)
	end(span, err, AttrBytes.Int64(info.Size))
	return info, err
}

func (m *multipart) Abort(ctx context.Context) error {
	ctx, span := m.d.start(ctx, instrument.OpAbort, "")
	err := m.next.Abort(ctx)
	end(span, err)
	return err
}
