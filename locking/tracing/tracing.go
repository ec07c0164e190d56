// Package tracing wraps a locking.Store (Redis or in-process) with
// OpenTelemetry spans: one client span per operation, named
// "locking.<op>", with the backend ("redis" also sets db.system.name).
//
// Like storage/tracing, an operation whose context carries no span is not
// traced, and the protocol answers locking/instrument does not count as
// failures (held, lost, not found, exists, deleting, cancelled) leave the
// span's status unset. The wrapper forwards Now exactly when the wrapped
// store has it. It is installed only when tracing is on.
package tracing

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/instrument"
)

// AttrBackend names the store behind the span.
const AttrBackend = attribute.Key("stratus.locking.backend")

// clock is the optional shared-clock capability of a store.
type clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// Wrap returns s traced with t under backend ("redis", "memory").
func Wrap(s locking.Store, backend string, t trace.Tracer) locking.Store {
	attrs := []attribute.KeyValue{AttrBackend.String(backend)}
	if backend == "redis" {
		attrs = append(attrs, attribute.String("db.system.name", "redis"))
	}
	w := &store{next: s, tracer: t, attrs: attrs}
	if c, ok := s.(clock); ok {
		return &clockStore{store: w, clock: c}
	}
	return w
}

type store struct {
	next   locking.Store
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

func (s *store) start(ctx context.Context, op string) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, nil
	}
	return s.tracer.Start(ctx, "locking."+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(s.attrs...))
}

func end(span trace.Span, err error) {
	if span == nil {
		return
	}
	if instrument.Failure(err) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (s *store) Acquire(ctx context.Context, key string, ttl time.Duration) (locking.Lease, error) {
	ctx, span := s.start(ctx, "lease_acquire")
	l, err := s.next.Acquire(ctx, key, ttl)
	end(span, err)
	return l, err
}

func (s *store) Renew(ctx context.Context, l locking.Lease, ttl time.Duration) (locking.Lease, error) {
	ctx, span := s.start(ctx, "lease_renew")
	nl, err := s.next.Renew(ctx, l, ttl)
	end(span, err)
	return nl, err
}

func (s *store) Release(ctx context.Context, l locking.Lease) error {
	ctx, span := s.start(ctx, "lease_release")
	err := s.next.Release(ctx, l)
	end(span, err)
	return err
}

func (s *store) Pin(ctx context.Context, digest string) error {
	ctx, span := s.start(ctx, "pin")
	err := s.next.Pin(ctx, digest)
	end(span, err)
	return err
}

func (s *store) PinAll(ctx context.Context, keys ...string) error {
	ctx, span := s.start(ctx, "pin_all")
	err := s.next.PinAll(ctx, keys...)
	end(span, err)
	return err
}

func (s *store) Claim(ctx context.Context, digest string, notPinnedSince time.Time, ttl time.Duration) (bool, error) {
	ctx, span := s.start(ctx, "claim")
	ok, err := s.next.Claim(ctx, digest, notPinnedSince, ttl)
	end(span, err)
	return ok, err
}

func (s *store) Unclaim(ctx context.Context, digest string) error {
	ctx, span := s.start(ctx, "unclaim")
	err := s.next.Unclaim(ctx, digest)
	end(span, err)
	return err
}

func (s *store) ClaimMany(ctx context.Context, digests []string, notPinnedSince time.Time, ttl time.Duration) ([]bool, error) {
	ctx, span := s.start(ctx, "claim_many")
	claimed, err := s.next.ClaimMany(ctx, digests, notPinnedSince, ttl)
	end(span, err)
	return claimed, err
}

func (s *store) UnclaimMany(ctx context.Context, digests []string) error {
	ctx, span := s.start(ctx, "unclaim_many")
	err := s.next.UnclaimMany(ctx, digests)
	end(span, err)
	return err
}

func (s *store) Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error {
	ctx, span := s.start(ctx, "session_create")
	err := s.next.Create(ctx, id, rec, ttl)
	end(span, err)
	return err
}

func (s *store) Get(ctx context.Context, id string) ([]byte, error) {
	ctx, span := s.start(ctx, "session_get")
	rec, err := s.next.Get(ctx, id)
	end(span, err)
	return rec, err
}

func (s *store) Update(ctx context.Context, l locking.Lease, id string, rec []byte, ttl time.Duration) error {
	ctx, span := s.start(ctx, "session_update")
	err := s.next.Update(ctx, l, id, rec, ttl)
	end(span, err)
	return err
}

func (s *store) Delete(ctx context.Context, id string) error {
	ctx, span := s.start(ctx, "session_delete")
	err := s.next.Delete(ctx, id)
	end(span, err)
	return err
}

func (s *store) Close() error { return s.next.Close() }

// clockStore is a store whose backend tells the shared time.
type clockStore struct {
	*store
	clock clock
}

func (s *clockStore) Now(ctx context.Context) (time.Time, error) {
	ctx, span := s.start(ctx, "now")
	t, err := s.clock.Now(ctx)
	end(span, err)
	return t, err
}
