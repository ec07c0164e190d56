package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

// Error codes of the distribution spec, plus the two Stratus uses for
// backpressure (the spec reserves TOOMANYREQUESTS; UNAVAILABLE is Docker's).
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnavailable         = "UNAVAILABLE"
	codeUnknown             = "UNKNOWN"
	codeRangeInvalid        = "RANGE_INVALID"
)

// apiError is an error a handler answers with: the HTTP status, the spec's
// code, a message for humans and optional extra headers (Range on a 416,
// Retry-After on a 503). Handlers return it; ServeHTTP writes it.
type apiError struct {
	Status  int
	Code    string
	Message string
	Detail  any
	Header  http.Header
	// Cause is logged, never sent to the client.
	Cause error
}

func (e *apiError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.Cause }

// hasCode reports whether err is an *apiError with the given code.
func hasCode(err error, code string) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == code
}

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *apiError) withDetail(d any) *apiError { e.Detail = d; return e }

func (e *apiError) withHeader(k, v string) *apiError {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(k, v)
	return e
}

// retryAfterSeconds is what Stratus suggests to clients when a backend is
// throttling or unreachable: long enough to ride out a Redis restart or an
// S3 SlowDown burst, short enough that pushes resume promptly.
const retryAfterSeconds = 2

// toAPIError maps any error from the stores onto what the client sees. The
// single mapping keeps the promise of design.md §7: transient backend
// failures become 503/429 with Retry-After, never a bare 500 and never a
// success.
func toAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case storage.Throttled(err):
		e := newError(http.StatusTooManyRequests, codeTooManyRequests, "the storage backend is throttling requests; retry later")
		e.Cause = err
		return e.withHeader("Retry-After", strconv.Itoa(retryAfterSeconds))
	case storage.Retryable(err), errors.Is(err, context.DeadlineExceeded):
		e := newError(http.StatusServiceUnavailable, codeUnavailable, "the storage backend is temporarily unavailable; retry later")
		e.Cause = err
		return e.withHeader("Retry-After", strconv.Itoa(retryAfterSeconds))
	case errors.Is(err, locking.ErrUnavailable):
		e := newError(http.StatusServiceUnavailable, codeUnavailable, "the session store (redis) is unavailable; pushes are refused until it is back, pulls still work")
		e.Cause = err
		return e.withHeader("Retry-After", strconv.Itoa(retryAfterSeconds))
	case errors.Is(err, storage.ErrFull):
		// registry:2 answers 500 here and leaves the operator to run df.
		e := newError(http.StatusInsufficientStorage, codeUnavailable, "the registry's storage is full; nothing was stored; free space or raise the quota, then push again")
		e.Cause = err
		return e
	case errors.Is(err, storage.ErrMisconfigured):
		// No Retry-After: retrying does not help until the operator acts.
		e := newError(http.StatusServiceUnavailable, codeUnavailable, "the storage backend refuses the registry (%s); the operator must fix the storage configuration", misconfigCause(err))
		e.Cause = err
		return e
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		e := newError(499, codeUnknown, "request cancelled")
		e.Cause = err
		return e
	}
	e := newError(http.StatusInternalServerError, codeUnknown, "internal error")
	e.Cause = err
	return e
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// misconfigCause is the part of a driver's misconfiguration error that
// names the cause, without keys or URLs: what the client may be told.
func misconfigCause(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, storage.ErrMisconfigured.Error()+": "); ok {
		msg = after
	}
	if cause, _, ok := strings.Cut(msg, ": "); ok {
		msg = cause
	}
	var op *storage.OpError
	if errors.As(err, &op) {
		msg = op.Driver + ": " + msg
	}
	return msg
}

func (g *Registry) writeError(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	ae := toAPIError(err)
	level := slog.LevelDebug
	switch {
	case ae.Status == 499 || ae.Status < 500:
	case errors.Is(err, storage.ErrMisconfigured):
		// Every request fails the same way until the operator acts: one
		// error line per cause, the rest at debug.
		level = slog.LevelDebug
		if g.firstOccurrence(misconfigCause(err)) {
			level = slog.LevelError
		}
	case errors.Is(err, storage.ErrFull):
		g.stats.storageFullAt.Store(time.Now().UnixNano())
		level = slog.LevelError
	case ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests:
		level = slog.LevelWarn
	default:
		level = slog.LevelError
	}
	g.logger.Log(r.Context(), level, "request failed", "request_id", requestID, "method", r.Method, "path", r.URL.Path,
		"status", ae.Status, "code", ae.Code, "message", ae.Message, "err", ae.Cause)
	for k, vs := range ae.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(ae.Status)
		return
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: ae.Code, Message: ae.Message, Detail: ae.Detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ae.Status)
	w.Write(body)
}
