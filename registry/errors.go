package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
)

// The error codes Stratus answers with. The first fourteen are the
// distribution spec's table ("Error Codes", code-1..code-14); the rest are
// Docker Registry extensions the reference registry answers and clients
// know: UNAVAILABLE (backend down), UNKNOWN (a bug), RANGE_INVALID (a blob
// range) and PAGINATION_NUMBER_INVALID (a bad ?n=).
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
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnavailable         = "UNAVAILABLE"
	codeUnknown             = "UNKNOWN"
	codeRangeInvalid        = "RANGE_INVALID"
	codePaginationInvalid   = "PAGINATION_NUMBER_INVALID"
)

// errorCode is one row of the error table: a code, the status it answers
// with, the spec's description (used when a handler has nothing more
// specific to say), and the other statuses the code may answer with in
// situations where HTTP or the spec fixes the status (withStatus).
type errorCode struct {
	Status   int
	Message  string
	Variants []int
}

// errorCodes is the one place where a code meets its HTTP status. Handlers
// pick a code (newError); the status comes from here. The few answers
// whose status the spec fixes differently for one situation use
// withStatus, each with its reason at the call site.
var errorCodes = map[string]errorCode{
	codeBlobUnknown: {http.StatusNotFound, "blob unknown to registry", nil},
	codeBlobUploadInvalid: {http.StatusBadRequest, "blob upload invalid", []int{
		http.StatusRequestedRangeNotSatisfiable, // a chunk out of order (spec: 416)
		http.StatusConflict,                     // the upload is busy or was taken over
		http.StatusRequestTimeout,               // the body came slower than limits.min_body_rate
	}},
	codeBlobUploadUnknown:   {http.StatusNotFound, "blob upload unknown to registry", nil},
	codeDigestInvalid:       {http.StatusBadRequest, "provided digest did not match uploaded content", nil},
	codeManifestBlobUnknown: {http.StatusBadRequest, "manifest references a manifest or blob unknown to registry", nil},
	codeManifestInvalid: {http.StatusBadRequest, "manifest invalid", []int{
		http.StatusRequestEntityTooLarge, // over max_manifest_size (spec: 413)
		http.StatusRequestURITooLong,     // too many ?tag= parameters
	}},
	codeManifestUnknown: {http.StatusNotFound, "manifest unknown to registry", nil},
	codeNameInvalid:     {http.StatusBadRequest, "invalid repository name", nil},
	codeNameUnknown:     {http.StatusNotFound, "repository name not known to registry", nil},
	codeSizeInvalid: {http.StatusBadRequest, "provided length did not match content length", []int{
		http.StatusRequestEntityTooLarge, // an upload body over registry.max_chunk_size
	}},
	codeUnauthorized: {http.StatusUnauthorized, "authentication required", nil},
	codeDenied:       {http.StatusForbidden, "requested access to the resource is denied", nil},
	codeUnsupported: {http.StatusMethodNotAllowed, "the operation is unsupported", []int{
		http.StatusNotFound, // an endpoint the registry does not have (spec: 404)
	}},
	codeTooManyRequests: {http.StatusTooManyRequests, "too many requests", nil},
	codeUnavailable: {http.StatusServiceUnavailable, "service unavailable", []int{
		http.StatusInsufficientStorage, // the storage is full (RFC 4918's 507)
	}},
	codeUnknown: {http.StatusInternalServerError, "unknown error", []int{
		statusClientClosed, // the client went away; nobody reads it
	}},
	codeRangeInvalid:      {http.StatusRequestedRangeNotSatisfiable, "invalid content range", nil},
	codePaginationInvalid: {http.StatusBadRequest, "invalid number of results requested", nil},
}

// apiError is an error a handler answers with: the spec's code, its status
// (from errorCodes unless a variant says otherwise), a message for humans
// and optional extra headers (Range on a 416, Retry-After on a 503).
// Handlers return it; ServeHTTP writes it.
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

// hasCode reports whether err answers with the given code.
func hasCode(err error, code string) bool {
	return err != nil && toAPIError(err).Code == code
}

// newError is the answer with code, its status from the table and a
// message (the table's when format is empty).
func newError(code, format string, args ...any) *apiError {
	row, ok := errorCodes[code]
	if !ok {
		// A code outside the table is a bug; answer it as one.
		row, code = errorCodes[codeUnknown], codeUnknown
	}
	msg := row.Message
	if format != "" {
		msg = fmt.Sprintf(format, args...)
	}
	return &apiError{Status: row.Status, Code: code, Message: msg}
}

// withStatus answers with one of the code's variant statuses, for a
// situation whose status the spec (or HTTP) fixes; every call says why. A
// status the table does not list for the code is a bug: it is refused and
// the table's status stays (TestErrorAnswersFollowTheTable catches it).
func (e *apiError) withStatus(status int) *apiError {
	if slices.Contains(errorCodes[e.Code].Variants, status) {
		e.Status = status
	}
	return e
}

func (e *apiError) withDetail(d any) *apiError { e.Detail = d; return e }

func (e *apiError) withCause(err error) *apiError { e.Cause = err; return e }

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

func retryLater(e *apiError) *apiError {
	return e.withHeader("Retry-After", strconv.Itoa(retryAfterSeconds))
}

// statusClientClosed is nginx's 499: the client went away and nobody reads
// the answer; it is logged, never counted as a failure.
const statusClientClosed = 499

// toAPIError maps any error from the stores onto what the client sees. The
// single mapping keeps the promise of design.md §7: transient backend
// failures become 503/429 with Retry-After, never a bare 500 and never a
// success. Content errors a handler did not turn into a more specific
// answer get their code here.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if e := contentError(err); e != nil {
		return e.withCause(err)
	}
	return backendError(err).withCause(err)
}

// contentError maps the content store's errors, or returns nil.
func contentError(err error) *apiError {
	switch {
	case errors.Is(err, content.ErrBeingDeleted):
		// A write races GC deleting an older copy of what it creates.
		return retryLater(newError(codeUnavailable, "what this request writes is being garbage-collected; retry shortly"))
	case errors.Is(err, content.ErrDataBeingDeleted):
		return retryLater(newError(codeUnavailable, "upload data is being garbage-collected; restart the upload"))
	case errors.Is(err, content.ErrReferenceUnknown):
		return newError(codeManifestBlobUnknown, "%v", err)
	case errors.Is(err, content.ErrManifestInvalid):
		msg := err.Error()
		var mi *content.ManifestInvalidError
		if errors.As(err, &mi) {
			msg = mi.Reason
		}
		return newError(codeManifestInvalid, "%s", msg)
	case errors.Is(err, content.ErrBlobUnknown):
		return newError(codeBlobUnknown, "%v", err)
	case errors.Is(err, content.ErrManifestUnknown):
		return newError(codeManifestUnknown, "%v", err)
	case errors.Is(err, content.ErrNameUnknown):
		return newError(codeNameUnknown, "%v", err)
	case errors.Is(err, content.ErrNameInvalid):
		return newError(codeNameInvalid, "%v", err)
	case errors.Is(err, content.ErrTagExists):
		// An immutable tag: the client may not move it (spec: DENIED).
		return newError(codeDenied, "%v", err)
	}
	return nil
}

// backendError maps storage, lock-store and context errors.
func backendError(err error) *apiError {
	switch {
	case storage.Throttled(err):
		return retryLater(newError(codeTooManyRequests, "the storage backend is throttling requests; retry later"))
	case storage.Retryable(err), errors.Is(err, context.DeadlineExceeded):
		return retryLater(newError(codeUnavailable, "the storage backend is temporarily unavailable; retry later"))
	case errors.Is(err, storage.ErrBudgetExhausted):
		return retryLater(newError(codeUnavailable, "the registry is at its memory budget (limits.memory); retry shortly"))
	case errors.Is(err, locking.ErrUnavailable):
		return retryLater(newError(codeUnavailable, "the session store (redis) is unavailable; pushes are refused until it is back, pulls still work"))
	case errors.Is(err, storage.ErrFull):
		// 507 is HTTP's own answer for this (RFC 4918); registry:2
		// answers 500 here and leaves the operator to run df.
		return newError(codeUnavailable, "the registry's storage is full; nothing was stored; free space or raise the quota, then push again").
			withStatus(http.StatusInsufficientStorage)
	case errors.Is(err, storage.ErrMisconfigured):
		// No Retry-After: retrying does not help until the operator acts.
		return newError(codeUnavailable, "the storage backend refuses the registry (%s); the operator must fix the storage configuration", misconfigCause(err))
	case errors.Is(err, context.Canceled):
		return newError(codeUnknown, "request cancelled").withStatus(statusClientClosed)
	}
	return newError(codeUnknown, "internal error")
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
	case ae.Status == statusClientClosed || ae.Status < 500:
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
