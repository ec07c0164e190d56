package httpmw

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// internalErrorBody is the OCI error body of a recovered panic: no detail,
// the log has it under the request id.
const internalErrorBody = `{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}` + "\n"

// Recover turns a panicking handler into a 500 answer and an error log line
// with the stack and the request id; the server keeps serving.
//
// http.ErrAbortHandler is re-panicked untouched: it is how a handler asks
// net/http to abort the response silently. When the panic comes after the
// handler started its answer, no 500 can be sent any more, so the
// connection is aborted the same way: the client sees a truncated answer
// rather than one that looks complete.
func Recover(l *slog.Logger) func(http.Handler) http.Handler {
	log := logger(l)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := asRecorder(w)
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"request_id", r.Header.Get(RequestIDHeader), "method", r.Method,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.wroteHeader {
					panic(http.ErrAbortHandler)
				}
				h := rec.Header()
				h.Del("Content-Length")
				h.Del("Docker-Content-Digest")
				h.Set("Content-Type", "application/json")
				rec.WriteHeader(http.StatusInternalServerError)
				rec.Write([]byte(internalErrorBody))
			}()
			next.ServeHTTP(rec, r)
		})
	}
}
