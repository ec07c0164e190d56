package httpmw

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// OtherRoute labels requests the route function does not know.
const OtherRoute = "other"

// Observe writes one access-log line per request, at info, and records the
// request metrics. Fields: request_id, method, route (the template),
// repo, reference (digest or tag), status, bytes_in, bytes_out, took,
// user_agent, client_ip, actor (the authenticated user, set with SetActor;
// empty for anonymous), and query with secrets redacted. At debug level
// the line also carries the request headers, redacted.
//
// A request whose handler panics through it (http.ErrAbortHandler, or a
// panic Recover turned into one) is logged with aborted=true before the
// panic goes on to net/http.
func Observe(opts Options) func(http.Handler) http.Handler {
	log := logger(opts.Logger)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			route := Route{Template: OtherRoute}
			if opts.Route != nil {
				if rt := opts.Route(r); rt.Template != "" {
					route = rt
				}
			}
			ip := clientIP(r, opts.TrustedProxies)
			ctx, actor := withActorSlot(context.WithValue(r.Context(), clientIPKey, ip))
			r = r.WithContext(ctx)
			body := &countingBody{ReadCloser: r.Body}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = body
			}
			rec := asRecorder(w)
			if opts.Metrics != nil {
				opts.Metrics.inFlight.Inc()
			}
			aborted := true
			defer func() {
				took := time.Since(start)
				status := rec.statusCode()
				if opts.Metrics != nil {
					opts.Metrics.inFlight.Dec()
					opts.Metrics.record(route.Template, r.Method, status, took, body.n, rec.bytes)
				}
				logRequest(r.Context(), log, r, route, ip, actor.get(), status, body.n, rec.bytes, took, aborted)
			}()
			next.ServeHTTP(rec, r)
			aborted = false
		})
	}
}

func logRequest(ctx context.Context, log *slog.Logger, r *http.Request, route Route, ip, actor string,
	status int, in, out int64, took time.Duration, aborted bool) {
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.Header.Get(RequestIDHeader)),
		slog.String("method", r.Method),
		slog.String("route", route.Template),
		slog.String("repo", route.Repository),
		slog.String("reference", route.Reference),
		slog.Int("status", status),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Duration("took", took),
		slog.String("user_agent", r.UserAgent()),
		slog.String("client_ip", ip),
		slog.String("actor", actor),
	}
	if q := RedactQuery(r.URL.RawQuery); q != "" {
		attrs = append(attrs, slog.String("query", q))
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	if log.Enabled(ctx, slog.LevelDebug) {
		attrs = append(attrs, slog.Any("headers", RedactHeaders(r.Header)))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "access", attrs...)
}
