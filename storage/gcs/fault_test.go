package gcs_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy sits between the driver and the emulator. Requests that match
// a rule get its fault; all others pass through untouched.
type faultProxy struct {
	URL      string
	target   *url.URL
	rp       *httputil.ReverseProxy
	mu       sync.Mutex
	rules    []*rule
	requests atomic.Int64 // every request seen, faulted or not
}

type faultKind int

const (
	// dropAnswer forwards the request, lets the emulator apply it, reads
	// the answer and then resets the driver's connection instead of
	// passing the answer on: "applied, answer lost".
	dropAnswer faultKind = iota
	// statusBefore answers with status (and a JSON API error body)
	// without forwarding: the store refused before doing anything.
	statusBefore
	// editAnswer forwards the request and passes on the answer after
	// edit has changed its body: a store that reports something else
	// than what was asked (a stand-in for the preconditions and checks
	// fake-gcs-server does not make).
	editAnswer
)

type rule struct {
	match  func(r *http.Request) bool
	kind   faultKind
	status int
	edit   func(body []byte) []byte // for editAnswer
	left   int                      // faults still to inject; -1 is unlimited
	hits   atomic.Int64
}

func newFaultProxy(t *testing.T, endpoint string) *faultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultProxy{target: target}
	// SetURL also sets the Host header to the emulator's, which its
	// XML-API routing needs.
	f.rp = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// add installs a rule and returns it, to read its hit count.
func (f *faultProxy) add(r *rule) *rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return r
}

func (f *faultProxy) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// pick returns the first rule that matches and has faults left.
func (f *faultProxy) pick(r *http.Request) *rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rl := range f.rules {
		if rl.left != 0 && rl.match(r) {
			if rl.left > 0 {
				rl.left--
			}
			rl.hits.Add(1)
			return rl
		}
	}
	return nil
}

func (f *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	rl := f.pick(r)
	switch {
	case rl == nil:
		f.rp.ServeHTTP(w, r)
	case rl.kind == statusBefore:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rl.status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"injected by the test proxy","errors":[{"reason":"injected"}]}}`, rl.status)
	case rl.kind == editAnswer:
		rec := httptest.NewRecorder()
		f.rp.ServeHTTP(rec, r)
		body := rl.edit(rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	case rl.kind == dropAnswer:
		rec := httptest.NewRecorder()
		f.rp.ServeHTTP(rec, r) // the emulator applies the request
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("faultProxy: cannot hijack")
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(err)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
	}
}

// Request matchers for the JSON API paths the Go client uses.

// isUpload matches a media upload of the bucket object name.
func isUpload(name string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/upload/storage/v1/") &&
			r.URL.Query().Get("name") == name
	}
}

// isUploadUnder matches media uploads of names under prefix.
func isUploadUnder(prefix string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/upload/storage/v1/") &&
			strings.HasPrefix(r.URL.Query().Get("name"), prefix)
	}
}

// isCompose matches a compose into the bucket object name. The client
// escapes the name's slashes; Path holds it decoded.
func isCompose(name string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/o/"+name+"/compose")
	}
}

// isDelete matches a delete of the bucket object name.
func isDelete(name string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/o/"+name)
	}
}

func everything(*http.Request) bool { return true }
