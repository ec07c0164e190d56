package registry

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
)

// specErrorCodes is the distribution spec's table of error codes
// (spec.md, "Error Codes", code-1 .. code-14), with the status each is
// answered with by the reference registry (distribution's
// registry/api/errcode and api/v2 descriptors), which clients expect.
var specErrorCodes = []struct {
	code   string
	status int
}{
	{"BLOB_UNKNOWN", 404},
	{"BLOB_UPLOAD_INVALID", 400},
	{"BLOB_UPLOAD_UNKNOWN", 404},
	{"DIGEST_INVALID", 400},
	{"MANIFEST_BLOB_UNKNOWN", 400},
	{"MANIFEST_INVALID", 400},
	{"MANIFEST_UNKNOWN", 404},
	{"NAME_INVALID", 400},
	{"NAME_UNKNOWN", 404},
	{"SIZE_INVALID", 400},
	{"UNAUTHORIZED", 401},
	{"DENIED", 403},
	{"UNSUPPORTED", 405},
	{"TOOMANYREQUESTS", 429},
}

// dockerExtensionCodes are the codes outside the spec's table that Stratus
// answers with; each is one the reference registry also uses.
var dockerExtensionCodes = []struct {
	code   string
	status int
}{
	{"UNAVAILABLE", 503},
	{"UNKNOWN", 500},
	{"RANGE_INVALID", 416},
	{"PAGINATION_NUMBER_INVALID", 400},
}

func TestErrorTableMatchesSpec(t *testing.T) {
	known := map[string]bool{}
	for _, group := range []struct {
		name string
		rows []struct {
			code   string
			status int
		}
	}{{"spec", specErrorCodes}, {"extension", dockerExtensionCodes}} {
		for _, want := range group.rows {
			t.Run(group.name+" "+want.code, func(t *testing.T) {
				known[want.code] = true
				row, ok := errorCodes[want.code]
				if !ok {
					t.Fatalf("%s is not in the error table", want.code)
				}
				if row.Status != want.status {
					t.Errorf("%s answers %d, want %d", want.code, row.Status, want.status)
				}
				if row.Message == "" {
					t.Errorf("%s has no default message", want.code)
				}
				if slices.Contains(row.Variants, row.Status) {
					t.Errorf("%s lists its own status as a variant", want.code)
				}
			})
		}
	}
	for code := range errorCodes {
		if !known[code] {
			t.Errorf("table code %s is neither the spec's nor a listed extension", code)
		}
	}
}

func TestWithStatusOnlyTakesVariants(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		want   int
	}{
		{codeBlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable, 416},
		{codeBlobUploadInvalid, http.StatusConflict, 409},
		{codeUnavailable, http.StatusInsufficientStorage, 507},
		{codeUnsupported, http.StatusNotFound, 404},
		{codeBlobUnknown, http.StatusTeapot, 404},
		{codeNameUnknown, http.StatusBadRequest, 404},
	} {
		if got := newError(tc.code, "").withStatus(tc.status).Status; got != tc.want {
			t.Errorf("%s withStatus(%d) = %d, want %d", tc.code, tc.status, got, tc.want)
		}
	}
	if e := newError("NO_SUCH_CODE", "x"); e.Code != codeUnknown || e.Status != 500 {
		t.Errorf("a code outside the table answers %s %d, want UNKNOWN 500", e.Code, e.Status)
	}
}

// errorChecker wraps the handler of every API test server: each error
// answer must carry a code of the table with its status or one of the
// code's variants. So every error response the API tests produce is
// checked against the table.
type errorChecker struct {
	t       testing.TB
	next    http.Handler
	checked atomic.Int64
}

func checkErrors(t testing.TB, next http.Handler) *errorChecker {
	return &errorChecker{t: t, next: next}
}

func (c *errorChecker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &errorRecorder{ResponseWriter: w}
	c.next.ServeHTTP(rec, r)
	if rec.status < 400 {
		return
	}
	c.checked.Add(1)
	if r.Method == http.MethodHead {
		if !tableHasStatus(rec.status) {
			c.t.Errorf("HEAD %s answered %d, a status no code of the table has", r.URL, rec.status)
		}
		return
	}
	var body errorBody
	if err := json.Unmarshal(rec.body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
		c.t.Errorf("%s %s answered %d with %q, not one error of the spec's shape", r.Method, r.URL, rec.status, rec.body.String())
		return
	}
	code := body.Errors[0].Code
	row, ok := errorCodes[code]
	switch {
	case !ok:
		c.t.Errorf("%s %s answered code %s, which is not in the table", r.Method, r.URL, code)
	case rec.status != row.Status && !slices.Contains(row.Variants, rec.status):
		c.t.Errorf("%s %s answered %s with %d; the table says %d (variants %v)", r.Method, r.URL, code, rec.status, row.Status, row.Variants)
	case body.Errors[0].Message == "":
		c.t.Errorf("%s %s answered %s without a message", r.Method, r.URL, code)
	}
}

func tableHasStatus(status int) bool {
	for _, row := range errorCodes {
		if row.Status == status || slices.Contains(row.Variants, status) {
			return true
		}
	}
	return false
}

// errorRecorder keeps the status, and the body of error answers only (a
// blob download streams through untouched).
type errorRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *errorRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *errorRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.status >= 400 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}
