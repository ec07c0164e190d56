package registry

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/membudget"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func newLimitedRegistry(t *testing.T, budget *membudget.Budget, lim Limits) *testRegistry {
	t.Helper()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	store := inmemory.New()
	deps := Deps{Storage: store, Locking: locks, Limits: lim}
	if budget != nil {
		deps.Budget = budget
	}
	reg, err := New(t.Context(), Config{}, deps)
	if err != nil {
		t.Fatal(err)
	}
	// Not behind checkErrors: its recorder hides the connection's read
	// deadline, which the body rate check sets (httpmw's does not).
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &testRegistry{t: t, srv: srv, store: store}
}

// TestMemoryBudgetRefuses: a manifest PUT whose body the budget cannot
// hold within memory_wait gets 503 UNAVAILABLE with Retry-After and stores
// nothing; once the budget frees up the same PUT works.
func TestMemoryBudgetRefuses(t *testing.T) {
	budget, err := membudget.New(64<<10, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := newLimitedRegistry(t, budget, Limits{})
	_, m := tr.imageManifest("repo", []byte("layer"))

	hold, err := budget.Acquire(t.Context(), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	r := tr.do("PUT", "/v2/repo/manifests/v1", m, "Content-Type", mtOCIManifest)
	tr.expect(r, http.StatusServiceUnavailable, codeUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	tr.expect(tr.do("GET", "/v2/repo/manifests/v1", nil, "Accept", mtOCIManifest), http.StatusNotFound, codeManifestUnknown)

	hold()
	tr.expect(tr.do("PUT", "/v2/repo/manifests/v1", m, "Content-Type", mtOCIManifest), http.StatusCreated, "")
}

// TestSlowBodyCutOff: a real client that trickles a chunk slower than
// min_body_rate is cut off with 408 (the read deadline ends a stall too),
// the session stays at its offset, and the upload's lease is free: a
// prompt client resumes it at once.
func TestSlowBodyCutOff(t *testing.T) {
	lim := Limits{MinBodyRate: 64 << 10, BodyRateWindow: 200 * time.Millisecond, BodyRateGrace: 100 * time.Millisecond}
	tests := []struct {
		name  string
		every time.Duration // between 10-byte writes; 0: one write, then silence
	}{
		{name: "trickle", every: 20 * time.Millisecond},
		{name: "stall", every: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newLimitedRegistry(t, nil, lim)
			r := tr.do("POST", "/v2/repo/blobs/uploads/", nil)
			tr.expect(r, http.StatusAccepted, "")
			loc := r.header.Get("Location")

			status := trickle(t, tr.srv.URL, loc, 1<<20, tt.every)
			if status != http.StatusRequestTimeout {
				t.Fatalf("trickled chunk: %d; want 408", status)
			}
			st := tr.do("GET", loc, nil)
			tr.expect(st, http.StatusNoContent, "")
			if got := st.header.Get("Range"); got != "0-0" && got != "" {
				t.Errorf("Range after the cut-off chunk: %q; want nothing stored", got)
			}
			data := []byte(strings.Repeat("x", 1000))
			tr.expect(tr.do("PATCH", loc, data, "Content-Type", "application/octet-stream", "Content-Range", "0-999"), http.StatusAccepted, "")
		})
	}
}

// trickle sends a PATCH of size bytes to loc over a raw connection, 10
// bytes every `every` (or 10 bytes and then nothing), and returns the
// status of the answer.
func trickle(t *testing.T, base, loc string, size int, every time.Duration) int {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", loc, u.Host, size)
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	chunk := []byte("0123456789")
	deadline := time.After(10 * time.Second)
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			break // cut off
		}
		wait := every
		if wait == 0 {
			wait = 10 * time.Second
		}
		select {
		case s := <-answered:
			return s
		case <-time.After(wait):
		case <-deadline:
			t.Fatal("no answer to a trickling body within 10s")
		}
	}
	select {
	case s := <-answered:
		return s
	case <-deadline:
		t.Fatal("no answer to a trickling body within 10s")
	}
	return 0
}

// TestReferrersPageSize: ?n= bounds a referrers page, the Link header
// carries it on to the next page, the last page has no Link, and a bad n
// is PAGINATION_NUMBER_INVALID.
func TestReferrersPageSize(t *testing.T) {
	tr := newLimitedRegistry(t, nil, Limits{})
	subject, m := tr.imageManifest("repo", []byte("layer"))
	tr.expect(tr.do("PUT", "/v2/repo/manifests/v1", m, "Content-Type", mtOCIManifest), http.StatusCreated, "")
	for i := range 5 {
		d, b := tr.referrerManifest("repo", subject, fmt.Sprintf("application/x.%d", i), 10)
		tr.expect(tr.do("PUT", "/v2/repo/manifests/"+d, b, "Content-Type", mtOCIManifest), http.StatusCreated, "")
	}
	tests := []struct {
		query     string
		wantPages []int
	}{
		{query: "?n=2", wantPages: []int{2, 2, 1}},
		{query: "?n=5", wantPages: []int{5}},
		{query: "?n=100", wantPages: []int{5}},
		{query: "", wantPages: []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			pages, _ := tr.referrers("/v2/repo/referrers/" + subject + tt.query)
			var got []int
			for _, p := range pages {
				got = append(got, len(p))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantPages) {
				t.Errorf("page sizes %v; want %v", got, tt.wantPages)
			}
		})
	}
	r := tr.do("GET", "/v2/repo/referrers/"+subject+"?n=2", nil)
	if l := r.header.Get("Link"); !strings.Contains(l, "n=2") || !strings.Contains(l, `rel="next"`) {
		t.Errorf("Link %q; want the next page with n=2", l)
	}
	for _, n := range []string{"0", "-1", "x"} {
		tr.expect(tr.do("GET", "/v2/repo/referrers/"+subject+"?n="+n, nil), http.StatusBadRequest, codePaginationInvalid)
	}
}
