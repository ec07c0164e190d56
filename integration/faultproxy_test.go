package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"
)

// storeOp is one operation of a store's API, as a storeDialect recognises
// it; the numbers are indexes into the dialect's ops.
type storeOp int

// faultKind is one way the proxy misbehaves.
type faultKind int

const (
	// faultBefore answers the store's throttling error (S3's 503
	// SlowDown, Azure's 503 ServerBusy, GCS's 429 rateLimitExceeded)
	// without forwarding: nothing applied.
	faultBefore faultKind = iota
	// faultAfter forwards the request, lets the store apply it and read
	// its whole answer, then resets the client's connection (TCP RST), so
	// the client never learns that the request succeeded.
	faultAfter
	// faultTruncate forwards the request, sends the answer's headers and
	// half its body, then resets the connection.
	faultTruncate
	// faultReset resets the connection without forwarding.
	faultReset
	// faultLag delays the request, then forwards it.
	faultLag
	numFaultKinds
	faultNone faultKind = -1
)

var faultKindNames = [numFaultKinds]string{"before(throttled)", "after(RST)", "truncate", "reset", "lag"}

func (k faultKind) String() string { return faultKindNames[k] }

// faultPlan says, per operation, how likely each fault is.
type faultPlan struct {
	rates map[storeOp][numFaultKinds]float64
	// forceAfter, if > 0, injects a fault kind that has a rate but has not
	// happened yet on the forceAfter-th request of an operation (and on
	// every later one until it does), so that a short run cannot miss a
	// fault by chance.
	forceAfter int
	lag        time.Duration
}

// set gives kind the rate p on each of ops.
func (p *faultPlan) set(kind faultKind, rate float64, ops ...storeOp) {
	if p.rates == nil {
		p.rates = map[storeOp][numFaultKinds]float64{}
	}
	for _, o := range ops {
		r := p.rates[o]
		r[kind] = rate
		p.rates[o] = r
	}
}

// planned reports whether the plan gives kind a rate on any operation.
func (p *faultPlan) planned(kind faultKind) bool {
	for _, r := range p.rates {
		if r[kind] > 0 {
			return true
		}
	}
	return false
}

// faultProxy sits between stratus and a store's emulator and, while
// enabled, injects the faults of its plan; while refusing, it answers
// every request with one store error instead. What it knows of the store
// is its dialect. Its decisions are a pure function of the seed: each
// operation draws from its own PCG stream, so the n-th request of an
// operation gets the same decision in every run with that seed (which
// request is n-th still depends on scheduling).
type faultProxy struct {
	URL     string // the store's endpoint, through the proxy
	enabled atomic.Bool
	refusal atomic.Pointer[refusalCase] // nil: none
	refused atomic.Int64

	dialect   storeDialect
	plan      faultPlan
	upstream  *url.URL
	transport *http.Transport
	rp        *httputil.ReverseProxy

	mu         sync.Mutex
	rngs       []*rand.Rand
	seen       []int64 // requests while enabled, by operation
	injected   [][numFaultKinds]int64
	mismatches []string // classifications that disagree with the client's own name
	errs       []string // the proxy's own failures
}

// faultSeed is $S3FAULT_SEED (not STRATUS_*, which `stratus serve` would
// reject as an unknown setting), or the clock; it is logged so that a
// failing run can be repeated.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("S3FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("S3FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("fault seed %d (repeat with S3FAULT_SEED=%d)", seed, seed)
	return seed
}

// newFaultProxy starts a proxy, disabled, to the store that d speaks at
// target (a base URL; its path is kept in URL, not forwarded twice).
func newFaultProxy(t *testing.T, d storeDialect, target string, seed uint64, plan faultPlan) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	n := len(d.ops)
	f := &faultProxy{
		dialect:   d,
		plan:      plan,
		upstream:  &url.URL{Scheme: u.Scheme, Host: u.Host},
		transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		rngs:      make([]*rand.Rand, n),
		seen:      make([]int64, n),
		injected:  make([][numFaultKinds]int64, n),
	}
	for o := range f.rngs {
		f.rngs[o] = rand.New(rand.NewPCG(seed, uint64(o)))
	}
	f.rp = &httputil.ReverseProxy{
		Transport: f.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(f.upstream)
			if d.keepHost {
				pr.Out.Host = pr.In.Host
			}
		},
	}
	f.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// stratus cancels requests (a failed part stops its siblings);
		// any other failure to reach the store is the proxy's own.
		if !errors.Is(err, context.Canceled) {
			f.fail("%s %s: forwarding: %v", r.Method, r.URL, err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		f.transport.CloseIdleConnections()
	})
	f.URL = srv.URL + u.Path
	return f
}

// refuse answers every request from now on with the store's error c
// (status and code); nil ends it.
func (f *faultProxy) refuse(c *refusalCase) { f.refusal.Store(c) }

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c := f.refusal.Load(); c != nil {
		f.refused.Add(1)
		io.Copy(io.Discard, r.Body)
		f.dialect.refuse(w, c.status, c.code)
		return
	}
	op := f.dialect.classify(r)
	if f.dialect.crossCheck != nil {
		if m := f.dialect.crossCheck(r, op); m != "" {
			f.mu.Lock()
			f.mismatches = append(f.mismatches, m)
			f.mu.Unlock()
		}
	}
	kind := faultNone
	if f.enabled.Load() {
		kind = f.decide(op)
	}
	switch kind {
	case faultBefore:
		io.Copy(io.Discard, r.Body)
		f.dialect.refuse(w, f.dialect.throttle.status, f.dialect.throttle.code)
		f.count(op, kind)
	case faultReset:
		if f.reset(w) {
			f.count(op, kind)
		}
	case faultAfter:
		f.applyThenDrop(w, r, op)
	case faultTruncate:
		f.truncate(w, r, op)
	case faultLag:
		f.count(op, kind)
		time.Sleep(f.plan.lag)
		f.rp.ServeHTTP(w, r)
	default:
		f.rp.ServeHTTP(w, r)
	}
}

// decide draws the fault for the next request of op.
func (f *faultProxy) decide(op storeOp) faultKind {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[op]++
	rates := f.plan.rates[op]
	p := f.rngs[op].Float64()
	for k := range numFaultKinds {
		if p < rates[k] {
			return k
		}
		p -= rates[k]
	}
	if f.plan.forceAfter > 0 && f.seen[op] >= int64(f.plan.forceAfter) {
		for k := range numFaultKinds {
			if rates[k] > 0 && f.injected[op][k] == 0 {
				return k
			}
		}
	}
	return faultNone
}

func (f *faultProxy) count(op storeOp, kind faultKind) {
	f.mu.Lock()
	f.injected[op][kind]++
	f.mu.Unlock()
}

func (f *faultProxy) fail(format string, args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// forward sends r to the store as it came, body streamed.
func (f *faultProxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = f.upstream.Scheme, f.upstream.Host
	out.Host = ""
	if f.dialect.keepHost {
		out.Host = r.Host
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return f.transport.RoundTrip(out)
}

// applyThenDrop lets the store apply r in full, then resets the client's
// connection instead of answering.
func (f *faultProxy) applyThenDrop(w http.ResponseWriter, r *http.Request, op storeOp) {
	resp, err := f.forward(r)
	if err != nil {
		f.rp.ErrorHandler(w, r, err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if f.reset(w) {
		f.count(op, faultAfter)
	}
}

// truncate forwards r and cuts the answer's body in half. Answers without
// a body to cut (errors, empty objects) pass unharmed and are not counted.
func (f *faultProxy) truncate(w http.ResponseWriter, r *http.Request, op storeOp) {
	resp, err := f.forward(r)
	if err != nil {
		f.rp.ErrorHandler(w, r, err)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	if resp.StatusCode/100 != 2 || resp.ContentLength <= 0 {
		io.Copy(w, resp.Body)
		return
	}
	if _, err := io.CopyN(w, resp.Body, resp.ContentLength/2); err != nil {
		// A client that gave up (its request context ended: the registry
		// request it served was cancelled) is not the proxy misbehaving.
		if r.Context().Err() == nil {
			f.fail("%s: sending half a body: %v", f.opName(op), err)
		}
		return
	}
	w.(http.Flusher).Flush()
	if f.reset(w) {
		f.count(op, faultTruncate)
	}
}

// reset hijacks the client's connection and closes it with SO_LINGER 0,
// which sends a TCP RST: the client sees "connection reset by peer".
func (f *faultProxy) reset(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		f.fail("the response writer cannot be hijacked")
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		f.fail("hijack: %v", err)
		return false
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
	return true
}

func (f *faultProxy) opName(op storeOp) string { return f.dialect.ops[op] }

// injectedTotal is how many faults of kind were injected over all operations.
func (f *faultProxy) injectedTotal(kind faultKind) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for o := range f.injected {
		n += f.injected[o][kind]
	}
	return n
}

// uncovered lists each of ops that was never requested, and each fault
// with a rate in the plan that never happened on its operation.
func (f *faultProxy) uncovered(ops []storeOp) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var miss []string
	for _, o := range ops {
		if f.seen[o] == 0 {
			miss = append(miss, f.opName(o)+": never requested while faults were on")
			continue
		}
		for k := range numFaultKinds {
			if f.plan.rates[o][k] > 0 && f.injected[o][k] == 0 {
				miss = append(miss, fmt.Sprintf("%s: no %s fault in %d requests", f.opName(o), k, f.seen[o]))
			}
		}
	}
	return miss
}

// problems are the proxy's own failures and misread requests.
func (f *faultProxy) problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(append([]string(nil), f.errs...), f.mismatches...)
}

// table renders requests and injected faults per operation and kind.
func (f *faultProxy) table() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "operation\trequests")
	for k := range numFaultKinds {
		fmt.Fprintf(tw, "\t%s", k)
	}
	fmt.Fprintln(tw, "\t")
	var total [numFaultKinds]int64
	var requests int64
	for o := range f.seen {
		fmt.Fprintf(tw, "%s\t%d", f.opName(storeOp(o)), f.seen[o])
		requests += f.seen[o]
		for k := range numFaultKinds {
			fmt.Fprintf(tw, "\t%d", f.injected[o][k])
			total[k] += f.injected[o][k]
		}
		fmt.Fprintln(tw, "\t")
	}
	fmt.Fprintf(tw, "total\t%d", requests)
	for k := range numFaultKinds {
		fmt.Fprintf(tw, "\t%d", total[k])
	}
	fmt.Fprintln(tw, "\t")
	tw.Flush()
	return b.String()
}
