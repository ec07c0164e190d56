package httpmw

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Trace opens one server span per request, named "<method> <route
// template>" (a bounded set), as a child of the W3C traceparent the
// client sent, if any. The span carries the method, route, repository,
// reference, request id and final status; a 5xx sets its error status.
// Handlers below reach it through the request context, so the storage and
// locking spans of the request become its children.
//
// Chain installs it only when Options.Tracer is set: with tracing off no
// span, propagator or extra writer exists.
func Trace(tracer trace.Tracer, routes RouteFunc) func(http.Handler) http.Handler {
	prop := propagation.TraceContext{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			route := Route{Template: OtherRoute}
			if routes != nil {
				if rt := routes(r); rt.Template != "" {
					route = rt
				}
			}
			ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			attrs := []attribute.KeyValue{
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route.Template),
			}
			if route.Repository != "" {
				attrs = append(attrs, attribute.String("stratus.repository", route.Repository))
			}
			if route.Reference != "" {
				attrs = append(attrs, attribute.String("stratus.reference", route.Reference))
			}
			if id := r.Header.Get(RequestIDHeader); id != "" {
				attrs = append(attrs, attribute.String("stratus.request_id", id))
			}
			ctx, span := tracer.Start(ctx, r.Method+" "+route.Template,
				trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
			rec := asRecorder(w)
			// Deferred so that a panic passing through (http.ErrAbortHandler)
			// still ends the span.
			defer func() {
				status := rec.statusCode()
				span.SetAttributes(attribute.Int("http.response.status_code", status),
					attribute.Int64("http.response.body.size", rec.bytes))
				if status >= 500 {
					span.SetStatus(codes.Error, strconv.Itoa(status)+" "+http.StatusText(status))
				}
				span.End()
			}()
			next.ServeHTTP(rec, r.WithContext(ctx))
		})
	}
}
