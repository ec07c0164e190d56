package azure_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// faultProxy sits between the driver and Azurite. For each request it
// asks rule what to do: forward it; forward it, let Azurite apply it and
// then reset the connection before the answer reaches the driver (a lost
// answer); or answer with an error status without forwarding.
type faultProxy struct {
	t       *testing.T
	target  *url.URL
	srv     *httptest.Server
	backend http.RoundTripper

	mu      sync.Mutex
	rule    func(r *http.Request) fault
	seen    []string // "METHOD op name" of every request
	faults  int
	putSize map[string]int64 // request body bytes per "op name"
}

// fault is what the proxy does with one request.
type fault struct {
	dropAnswer bool   // forward, then reset the connection
	status     int    // answer this status without forwarding
	code       string // x-ms-error-code with status
}

func newFaultProxy(t *testing.T, serviceURL string) *faultProxy {
	u, err := url.Parse(serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, target: u, backend: &http.Transport{}, putSize: map[string]int64{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the proxy's equivalent of the service URL it was made for.
func (p *faultProxy) URL() string { return p.srv.URL + p.target.Path }

// setRule replaces the rule; nil forwards everything.
func (p *faultProxy) setRule(rule func(r *http.Request) fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = rule
}

// faultCount is how many requests the proxy interfered with.
func (p *faultProxy) faultCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// requests returns the requests seen so far whose description contains s.
func (p *faultProxy) requests(s string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.seen {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

// bytesSent is the request body bytes of every request whose description
// contains s.
func (p *faultProxy) bytesSent(s string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for k, v := range p.putSize {
		if strings.Contains(k, s) {
			n += v
		}
	}
	return n
}

// describe names a request by method, Azure operation and blob name:
// "PUT block data/x", "PUT blocklist data/x", "PUT blob data/x",
// "DELETE blob data/x", "POST batch ".
func describe(r *http.Request) string {
	op := r.URL.Query().Get("comp")
	if op == "" {
		op = "blob"
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if _, rest, ok := strings.Cut(name, "/"); ok { // account
		if _, blob, ok := strings.Cut(rest, "/"); ok { // container
			name = blob
		} else {
			name = ""
		}
	}
	return r.Method + " " + op + " " + name
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	desc := describe(r)
	p.mu.Lock()
	p.seen = append(p.seen, desc)
	var f fault
	if p.rule != nil {
		f = p.rule(r)
	}
	if f.dropAnswer || f.status != 0 {
		p.faults++
	}
	p.mu.Unlock()

	if f.status != 0 {
		io.Copy(io.Discard, r.Body)
		if f.code != "" {
			w.Header().Set("x-ms-error-code", f.code)
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(f.status)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = p.target.Host
	counter := &countingReader{r: r.Body}
	out.Body = io.NopCloser(counter)
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	resp, err := p.backend.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	p.mu.Lock()
	p.putSize[desc] += counter.n
	p.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if f.dropAnswer {
		// Azurite has applied the request; the driver never learns.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			p.t.Errorf("fault proxy: hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// once returns a rule that applies f to the first request matching match
// (by its describe string and request) and forwards everything else.
func once(match func(desc string, r *http.Request) bool, f fault) func(*http.Request) fault {
	done := false
	return func(r *http.Request) fault {
		if !done && match(describe(r), r) {
			done = true
			return f
		}
		return fault{}
	}
}

// always applies f to every request matching match.
func always(match func(desc string, r *http.Request) bool, f fault) func(*http.Request) fault {
	return func(r *http.Request) fault {
		if match(describe(r), r) {
			return f
		}
		return fault{}
	}
}

// op matches requests whose description starts with prefix and whose
// blob name contains name.
func op(prefix, name string) func(string, *http.Request) bool {
	return func(desc string, _ *http.Request) bool {
		return strings.HasPrefix(desc, prefix) && strings.Contains(desc, name)
	}
}
