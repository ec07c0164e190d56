// Package httpmw holds the HTTP middleware in front of the registry, each a
// plain func(http.Handler) http.Handler:
//
//   - RequestID: accept a sane X-Request-Id or make one, and echo it;
//   - Observe: one access-log line per request (log/slog) and the HTTP
//     request metrics, with the client IP taken from X-Forwarded-For only
//     when the peer is a trusted proxy, and secrets redacted;
//   - Recover: a panicking handler answers 500, its stack is logged with
//     the request id, and the server goes on serving;
//   - Trace (optional): an OpenTelemetry server span per request.
//
// Chain composes them in that order, Trace right after RequestID
// (Recover innermost, so that the access log, the metrics and the span see
// the 500 it writes).
package httpmw

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"go.opentelemetry.io/otel/trace"
)

// Route is what a request path means, for labels and logs. Template must
// come from a bounded set (it is a metric label); Repository and Reference
// are logged only.
type Route struct {
	Template   string
	Repository string
	Reference  string // digest or tag
}

// RouteFunc resolves a request's route. The registry's router provides it;
// the middleware knows nothing about the API.
type RouteFunc func(r *http.Request) Route

// Options configure Chain and Observe.
type Options struct {
	// Logger receives the access log (info) and recovered panics (error).
	Logger *slog.Logger
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	// Empty: the header is ignored and the client IP is the peer's.
	TrustedProxies []netip.Prefix
	// Route resolves the route template, repository and reference. Nil,
	// or an empty template: the request is labelled "other".
	Route RouteFunc
	// Metrics, if not nil, receive the request series.
	Metrics *Metrics
	// Tracer, if not nil, opens a span per request (Trace). Nil installs
	// no tracing layer at all.
	Tracer trace.Tracer
}

// Chain returns RequestID(Observe(opts)(Recover(logger)(h))), with
// Trace(opts.Tracer) between RequestID and Observe when a tracer is set.
func Chain(opts Options) func(http.Handler) http.Handler {
	obs := Observe(opts)
	rec := Recover(opts.Logger)
	if opts.Tracer != nil {
		tr := Trace(opts.Tracer, opts.Route)
		return func(h http.Handler) http.Handler { return RequestID(tr(obs(rec(h)))) }
	}
	return func(h http.Handler) http.Handler { return RequestID(obs(rec(h))) }
}

// ctxKey types the values this package keeps in a request's context.
type ctxKey int

const clientIPKey ctxKey = iota

// ClientIP returns the client address Observe determined for the request
// (X-Forwarded-For from a trusted proxy, else the peer), or "" outside it.
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey).(string)
	return ip
}

// logger returns l, or a logger that discards.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
