package tracing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratus-registry/stratus/internal/spantest"
	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/locking/tracing"
)

func TestSuiteThroughWrapper(t *testing.T) {
	tracer, _ := spantest.New(t)
	lockingtest.Run(t, func(t *testing.T) locking.Store {
		s := tracing.Wrap(memory.New(), "memory", tracer)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

var parent = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled,
})

func TestSpans(t *testing.T) {
	tracer, exp := spantest.New(t)
	s := tracing.Wrap(memory.New(), "memory", tracer)
	defer s.Close()
	ctx := trace.ContextWithSpanContext(context.Background(), parent)
	l, err := s.Acquire(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "k", time.Minute); !errors.Is(err, locking.ErrHeld) {
		t.Fatalf("second acquire: %v, want ErrHeld", err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, locking.ErrNotFound) {
		t.Fatalf("get: %v, want ErrNotFound", err)
	}
	if err := s.Release(context.Background(), l); err != nil { // no parent: no span
		t.Fatal(err)
	}
	tests := []struct{ name string }{{"locking.lease_acquire"}, {"locking.lease_acquire"}, {"locking.session_get"}}
	spans := exp.GetSpans()
	if len(spans) != len(tests) {
		t.Fatalf("%d spans, want %d", len(spans), len(tests))
	}
	for i, tt := range tests {
		sp := spans[i]
		if sp.Name != tt.name || sp.Parent.SpanID() != parent.SpanID() || sp.Status.Code != codes.Unset {
			t.Errorf("span %d = %s parent %s status %v; want %s, child of the caller, no error (answers are not failures)",
				i, sp.Name, sp.Parent.SpanID(), sp.Status.Code, tt.name)
		}
	}
}
