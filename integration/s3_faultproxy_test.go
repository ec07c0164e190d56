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

// s3Op is one S3 operation of the ones the s3 driver sends, as the fault
// proxy recognises it from method, path, query and headers.
type s3Op int

const (
	opPutObject s3Op = iota
	opPutObjectCreateOnly
	opUploadPart
	opUploadPartCopy
	opCreateMultipartUpload
	opCompleteMultipartUpload
	opAbortMultipartUpload
	opDeleteObject
	opDeleteObjects
	opGetObject
	opHeadObject
	opListObjectsV2
	opListParts
	opOther // bucket-level calls, CopyObject, anything else
	numS3Ops
)

var s3OpNames = [numS3Ops]string{
	"PutObject", "PutObject(If-None-Match)", "UploadPart", "UploadPartCopy",
	"CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload",
	"DeleteObject", "DeleteObjects", "GetObject", "HeadObject", "ListObjectsV2",
	"ListParts", "other",
}

func (o s3Op) String() string { return s3OpNames[o] }

// allS3Ops are the operations the driver uses (opOther excluded).
func allS3Ops() []s3Op {
	ops := make([]s3Op, 0, numS3Ops-1)
	for o := range opOther {
		ops = append(ops, o)
	}
	return ops
}

// classifyS3 tells which operation a path-style S3 request is.
func classifyS3(r *http.Request) s3Op {
	q := r.URL.Query()
	p := strings.TrimPrefix(r.URL.Path, "/")
	i := strings.IndexByte(p, '/')
	hasKey := i >= 0 && i < len(p)-1 // "/bucket/key", not "/bucket" or "/bucket/"
	upload := q.Has("uploadId")
	switch r.Method {
	case http.MethodPut:
		copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
		switch {
		case !hasKey:
			return opOther
		case upload && q.Has("partNumber") && copySrc:
			return opUploadPartCopy
		case upload && q.Has("partNumber"):
			return opUploadPart
		case copySrc:
			return opOther // CopyObject: the driver never sends it
		case r.Header.Get("If-None-Match") == "*":
			return opPutObjectCreateOnly
		}
		return opPutObject
	case http.MethodPost:
		switch {
		case q.Has("delete") && !hasKey:
			return opDeleteObjects
		case q.Has("uploads") && hasKey:
			return opCreateMultipartUpload
		case upload && hasKey:
			return opCompleteMultipartUpload
		}
	case http.MethodDelete:
		switch {
		case hasKey && upload:
			return opAbortMultipartUpload
		case hasKey:
			return opDeleteObject
		}
	case http.MethodGet:
		switch {
		case hasKey && upload:
			return opListParts
		case !hasKey && q.Get("list-type") == "2":
			return opListObjectsV2
		case hasKey:
			return opGetObject
		}
	case http.MethodHead:
		if hasKey {
			return opHeadObject
		}
	}
	return opOther
}

// sdkOpNames is what aws-sdk-go-v2 puts in its x-id query parameter for
// each operation, when it sends one; the proxy checks its own reading of
// the request against it.
var sdkOpNames = map[string][]s3Op{
	"PutObject":               {opPutObject, opPutObjectCreateOnly},
	"UploadPart":              {opUploadPart},
	"UploadPartCopy":          {opUploadPartCopy},
	"CreateMultipartUpload":   {opCreateMultipartUpload},
	"CompleteMultipartUpload": {opCompleteMultipartUpload},
	"AbortMultipartUpload":    {opAbortMultipartUpload},
	"DeleteObject":            {opDeleteObject},
	"DeleteObjects":           {opDeleteObjects},
	"GetObject":               {opGetObject},
	"HeadObject":              {opHeadObject},
	"ListObjectsV2":           {opListObjectsV2},
	"ListParts":               {opListParts},
}

// faultKind is one way the proxy misbehaves.
type faultKind int

const (
	// faultBefore answers 503 SlowDown without forwarding: nothing applied.
	faultBefore faultKind = iota
	// faultAfter forwards the request, lets the store apply it and read
	// its whole answer, then resets the client's connection (TCP RST), so
	// the client never learns that the request succeeded.
	faultAfter
	// faultTruncate (GetObject only) forwards the request, sends the
	// answer's headers and half its body, then resets the connection.
	faultTruncate
	// faultReset resets the connection without forwarding.
	faultReset
	// faultLag delays the request, then forwards it.
	faultLag
	numFaultKinds
	faultNone faultKind = -1
)

var faultKindNames = [numFaultKinds]string{"before(503)", "after(RST)", "truncate", "reset", "lag"}

func (k faultKind) String() string { return faultKindNames[k] }

// faultPlan says, per operation, how likely each fault is.
type faultPlan struct {
	rates [numS3Ops][numFaultKinds]float64
	// forceAfter, if > 0, injects a fault kind that has a rate but has not
	// happened yet on the forceAfter-th request of an operation (and on
	// every later one until it does), so that a short run cannot miss a
	// fault by chance.
	forceAfter int
	lag        time.Duration
}

// set gives kind the rate p on each of ops.
func (p *faultPlan) set(kind faultKind, rate float64, ops ...s3Op) {
	for _, o := range ops {
		p.rates[o][kind] = rate
	}
}

// s3FaultProxy sits between stratus and MinIO and, while enabled, injects
// the faults of its plan. Its decisions are a pure function of the seed:
// each operation draws from its own PCG stream, so the n-th request of an
// operation gets the same decision in every run with that seed (which
// request is n-th still depends on scheduling).
type s3FaultProxy struct {
	URL     string
	enabled atomic.Bool

	plan      faultPlan
	upstream  *url.URL
	transport *http.Transport
	rp        *httputil.ReverseProxy

	mu         sync.Mutex
	rngs       [numS3Ops]*rand.Rand
	seen       [numS3Ops]int64 // requests while enabled
	injected   [numS3Ops][numFaultKinds]int64
	mismatches []string // classifications that disagree with the SDK's x-id
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

// newS3FaultProxy starts a proxy to the S3 server at target, disabled.
func newS3FaultProxy(t *testing.T, target string, seed uint64, plan faultPlan) *s3FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &s3FaultProxy{
		plan:      plan,
		upstream:  u,
		transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	for o := range f.rngs {
		f.rngs[o] = rand.New(rand.NewPCG(seed, uint64(o)))
	}
	f.rp = &httputil.ReverseProxy{
		Transport: f.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the Host header the client signed (SigV4 covers it).
			pr.Out.Host = pr.In.Host
		},
	}
	f.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// stratus cancels requests (a failed part stops its siblings);
		// any other failure to reach MinIO is the proxy's own.
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
	f.URL = srv.URL
	return f
}

func (f *s3FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := classifyS3(r)
	f.checkSDKName(op, r)
	kind := faultNone
	if f.enabled.Load() {
		kind = f.decide(op)
	}
	switch kind {
	case faultBefore:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>`)
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
func (f *s3FaultProxy) decide(op s3Op) faultKind {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[op]++
	rates := &f.plan.rates[op]
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

func (f *s3FaultProxy) count(op s3Op, kind faultKind) {
	f.mu.Lock()
	f.injected[op][kind]++
	f.mu.Unlock()
}

func (f *s3FaultProxy) fail(format string, args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *s3FaultProxy) checkSDKName(op s3Op, r *http.Request) {
	xid := r.URL.Query().Get("x-id")
	want, known := sdkOpNames[xid]
	if xid == "" || !known && op == opOther {
		return
	}
	for _, o := range want {
		if o == op {
			return
		}
	}
	f.mu.Lock()
	f.mismatches = append(f.mismatches, fmt.Sprintf("%s %s: read as %s, the SDK says %s", r.Method, r.URL, op, xid))
	f.mu.Unlock()
}

// forward sends r to the store as it came, body streamed.
func (f *s3FaultProxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = f.upstream.Scheme, f.upstream.Host
	out.Host = r.Host
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return f.transport.RoundTrip(out)
}

// applyThenDrop lets the store apply r in full, then resets the client's
// connection instead of answering.
func (f *s3FaultProxy) applyThenDrop(w http.ResponseWriter, r *http.Request, op s3Op) {
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
func (f *s3FaultProxy) truncate(w http.ResponseWriter, r *http.Request, op s3Op) {
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
		f.fail("%s: sending half a body: %v", op, err)
		return
	}
	w.(http.Flusher).Flush()
	if f.reset(w) {
		f.count(op, faultTruncate)
	}
}

// reset hijacks the client's connection and closes it with SO_LINGER 0,
// which sends a TCP RST: the client sees "connection reset by peer".
func (f *s3FaultProxy) reset(w http.ResponseWriter) bool {
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

// injectedTotal is how many faults of kind were injected over all operations.
func (f *s3FaultProxy) injectedTotal(kind faultKind) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for o := range numS3Ops {
		n += f.injected[o][kind]
	}
	return n
}

// uncovered lists each of ops that was never requested, and each fault
// with a rate in the plan that never happened on its operation.
func (f *s3FaultProxy) uncovered(ops []s3Op) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var miss []string
	for _, o := range ops {
		if f.seen[o] == 0 {
			miss = append(miss, o.String()+": never requested while faults were on")
			continue
		}
		for k := range numFaultKinds {
			if f.plan.rates[o][k] > 0 && f.injected[o][k] == 0 {
				miss = append(miss, fmt.Sprintf("%s: no %s fault in %d requests", o, k, f.seen[o]))
			}
		}
	}
	return miss
}

// problems are the proxy's own failures and misread requests.
func (f *s3FaultProxy) problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(append([]string(nil), f.errs...), f.mismatches...)
}

// table renders requests and injected faults per operation and kind.
func (f *s3FaultProxy) table() string {
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
	for o := range numS3Ops {
		fmt.Fprintf(tw, "%s\t%d", o, f.seen[o])
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
