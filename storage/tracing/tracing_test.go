package tracing_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratus-registry/stratus/internal/spantest"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/tracing"
)

// parent is a sampled span context every suite operation runs under, so
// that the wrapper records spans during the suite.
var parent = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{1, 2, 3},
	SpanID:     trace.SpanID{4, 5, 6},
	TraceFlags: trace.FlagsSampled,
})

func withParent(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, parent)
}

// parented puts parent into every context before the traced driver sees it.
type parented struct{ storage.Driver }

func (p parented) Stat(ctx context.Context, key string) (storage.Info, error) {
	return p.Driver.Stat(withParent(ctx), key)
}
func (p parented) Reader(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return p.Driver.Reader(withParent(ctx), key, off, n)
}
func (p parented) Put(ctx context.Context, key string, r io.Reader, o storage.PutOptions) (storage.Info, error) {
	return p.Driver.Put(withParent(ctx), key, r, o)
}
func (p parented) List(ctx context.Context, prefix, after string, limit int) (storage.ListPage, error) {
	return p.Driver.List(withParent(ctx), prefix, after, limit)
}
func (p parented) Delete(ctx context.Context, key string) error {
	return p.Driver.Delete(withParent(ctx), key)
}
func (p parented) DeleteBatch(ctx context.Context, keys []string) error {
	return p.Driver.DeleteBatch(withParent(ctx), keys)
}
func (p parented) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	mp, err := p.Driver.NewMultipart(withParent(ctx), key)
	return parentedMP{mp}, err
}
func (p parented) ResumeMultipart(ctx context.Context, h []byte) (storage.Multipart, error) {
	mp, err := p.Driver.ResumeMultipart(withParent(ctx), h)
	return parentedMP{mp}, err
}

type parentedMP struct{ storage.Multipart }

func (m parentedMP) Append(ctx context.Context, r io.Reader) (int64, error) {
	return m.Multipart.Append(withParent(ctx), r)
}
func (m parentedMP) Commit(ctx context.Context) (storage.Info, error) {
	return m.Multipart.Commit(withParent(ctx))
}
func (m parentedMP) Abort(ctx context.Context) error { return m.Multipart.Abort(withParent(ctx)) }

func TestDriverSuiteThroughWrapper(t *testing.T) {
	tracer, exp := spantest.New(t)
	shared := inmemory.New()
	drivertest.RunWith(t, func(t *testing.T) storage.Driver {
		d := parented{tracing.Wrap(shared.Clone(), tracer)}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}, drivertest.Config{SkipBoundedMemory: true, LargeSize: 8 << 20})
	spans := exp.GetSpans()
	ops := map[string]int{}
	for _, s := range spans {
		if s.Parent.SpanID() != parent.SpanID() || s.SpanContext.TraceID() != parent.TraceID() {
			t.Fatalf("span %s is not a child of the caller's span", s.Name)
		}
		ops[s.Name]++
	}
	for _, want := range []string{"storage.stat", "storage.read", "storage.put", "storage.list", "storage.delete",
		"storage.multipart_new", "storage.multipart_append", "storage.multipart_commit"} {
		if ops[want] == 0 {
			t.Errorf("no %s span after the suite (spans: %v)", want, ops)
		}
	}
}

// failing answers every Stat with err.
type failing struct {
	storage.Driver
	err error
}

func (f failing) Stat(context.Context, string) (storage.Info, error) { return storage.Info{}, f.err }

func TestErrorsAndAnswers(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus codes.Code
	}{
		{"success", nil, codes.Unset},
		{"not found is an answer", storage.ErrNotFound, codes.Unset},
		{"cancelled caller", context.Canceled, codes.Unset},
		{"backend fault", errors.New("connection reset"), codes.Error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracer, exp := spantest.New(t)
			d := tracing.Wrap(failing{inmemory.New(), tt.err}, tracer)
			_, _ = d.Stat(withParent(context.Background()), "a/b")
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Status.Code != tt.wantStatus {
				t.Errorf("status %v, want %v", s.Status.Code, tt.wantStatus)
			}
			if (len(s.Events) > 0) != (tt.wantStatus == codes.Error) {
				t.Errorf("events %v: an error is recorded exactly when it is a failure", s.Events)
			}
			if s.SpanKind != trace.SpanKindClient || s.Name != "storage.stat" {
				t.Errorf("span %q kind %v", s.Name, s.SpanKind)
			}
		})
	}
}

func TestNoSpanWithoutParent(t *testing.T) {
	tracer, exp := spantest.New(t)
	d := tracing.Wrap(inmemory.New(), tracer)
	if _, err := d.Put(context.Background(), "k", strings.NewReader("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans for an operation outside any trace, want 0", n)
	}
}

type signer struct{ storage.Driver }

func (signer) SignedURL(context.Context, string, time.Duration) (string, error) { return "u", nil }

// signerReaper is the in-memory driver (a reaper) plus SignedURL.
type signerReaper struct{ *inmemory.Driver }

func (signerReaper) SignedURL(context.Context, string, time.Duration) (string, error) {
	return "u", nil
}

func TestCapabilitiesPreserved(t *testing.T) {
	tracer, _ := spantest.New(t)
	tests := []struct {
		name               string
		d                  storage.Driver
		wantSign, wantReap bool
	}{
		{"inmemory reaps", inmemory.New(), false, true},
		{"plain", struct{ storage.Driver }{inmemory.New()}, false, false},
		{"signer only", signer{struct{ storage.Driver }{inmemory.New()}}, true, false},
		{"both", signerReaper{inmemory.New()}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tracing.Wrap(tt.d, tracer)
			_, sign := w.(storage.URLSigner)
			_, reap := w.(storage.MultipartReaper)
			if sign != tt.wantSign || reap != tt.wantReap {
				t.Errorf("signer=%v reaper=%v, want %v %v", sign, reap, tt.wantSign, tt.wantReap)
			}
		})
	}
}

// discard is an exporter that drops spans, so a benchmark measures the
// wrapper and the SDK, not a growing in-memory store.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkStat compares a bare driver with the traced one, outside a
// trace (background work) and inside a sampled one.
func BenchmarkStat(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	defer tp.Shutdown(context.Background())
	bare := inmemory.New()
	if _, err := bare.Put(context.Background(), "k", strings.NewReader("x"), storage.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	traced := tracing.Wrap(bare, tp.Tracer("bench"))
	ctx, span := tp.Tracer("bench").Start(context.Background(), "request")
	defer span.End()
	for _, bb := range []struct {
		name string
		d    storage.Driver
		ctx  context.Context
	}{
		{"bare", bare, context.Background()},
		{"traced/no-parent", traced, context.Background()},
		{"traced/sampled", traced, ctx},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bb.d.Stat(bb.ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
