package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// blobContent is deterministic blob content: size bytes of ChaCha8 keyed by
// the run's seed and the blob's id.
type blobContent struct {
	seed, id uint64
	size     int64
	dgst     string
}

func newContent(seed, id uint64, size int64) blobContent {
	c := blobContent{seed: seed, id: id, size: size}
	h := sha256.New()
	io.Copy(h, c.reader())
	c.dgst = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return c
}

func (c blobContent) reader() io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], c.seed)
	binary.LittleEndian.PutUint64(key[8:], c.id)
	return io.LimitReader(rand.NewChaCha8(key), c.size)
}

// faultRecorder collects what the registry answered, over every attempt of
// every request of the workload.
type faultRecorder struct {
	mu       sync.Mutex
	byCode   map[int]int
	byReq    map[string]map[int]int // "PATCH chunk" -> status -> count
	problems []string
	counts   map[string]int // named tallies: retried, resynced, ...
}

func newFaultRecorder() *faultRecorder {
	return &faultRecorder{byCode: map[int]int{}, byReq: map[string]map[int]int{}, counts: map[string]int{}}
}

// status records one answer of the registry and checks the promise that
// every 429/503 carries a Retry-After, and that there is no bare 500.
func (r *faultRecorder) status(label string, code int, h http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byCode[code]++
	if r.byReq[label] == nil {
		r.byReq[label] = map[int]int{}
	}
	r.byReq[label][code]++
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if _, err := strconv.Atoi(h.Get("Retry-After")); err != nil {
			r.counts["429/503 without Retry-After"]++
			r.problems = append(r.problems, fmt.Sprintf("%s: %d without a numeric Retry-After (%q)", label, code, h.Get("Retry-After")))
		}
	}
}

func (r *faultRecorder) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *faultRecorder) add(name string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[name] += n
}

func (r *faultRecorder) problemList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.problems)
}

// table renders the statuses per request kind, and the tallies.
func (r *faultRecorder) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	codes := make([]int, 0, len(r.byCode))
	for c := range r.byCode {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "request")
	for _, c := range codes {
		fmt.Fprintf(tw, "\t%d", c)
	}
	fmt.Fprintln(tw, "\t")
	labels := make([]string, 0, len(r.byReq))
	for l := range r.byReq {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	for _, l := range append(labels, "all") {
		fmt.Fprint(tw, l)
		for _, c := range codes {
			n := r.byCode[c]
			if l != "all" {
				n = r.byReq[l][c]
			}
			fmt.Fprintf(tw, "\t%d", n)
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
	names := make([]string, 0, len(r.counts))
	for n := range r.counts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s: %d\n", n, r.counts[n])
	}
	return b.String()
}

// rawClient speaks the distribution API by hand, so that the test knows
// exactly which request was acknowledged with what. On a 429 or 503 it
// sends the same request again, as those statuses promise that this works.
type rawClient struct {
	base        string
	hc          *http.Client
	rec         *faultRecorder
	maxAttempts int
	// retryCap bounds the wait a Retry-After asks for, to keep the test short.
	retryCap time.Duration
}

// rawResp is the registry's final answer to a request (after retries).
type rawResp struct {
	status   int
	header   http.Header
	body     []byte // at most 64 KiB, for error messages and manifests
	attempts int
}

// requestBody makes a fresh body for each attempt.
type requestBody func() (io.Reader, int64)

func bytesBody(b []byte) requestBody {
	return func() (io.Reader, int64) { return bytes.NewReader(b), int64(len(b)) }
}

// do sends method url (relative to base unless absolute) and retries 429
// and 503 answers up to maxAttempts. err is a transport failure: the
// registry did not answer at all.
func (c *rawClient) do(ctx context.Context, label, method, url string, body requestBody, hdr ...string) (rawResp, error) {
	if !strings.HasPrefix(url, "http") {
		url = c.base + url
	}
	for attempt := 1; ; attempt++ {
		var r io.Reader
		n := int64(0)
		if body != nil {
			r, n = body()
		}
		req, err := http.NewRequestWithContext(ctx, method, url, r)
		if err != nil {
			return rawResp{}, err
		}
		req.ContentLength = n
		if n == 0 {
			req.Body = http.NoBody
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return rawResp{attempts: attempt}, fmt.Errorf("%s %s (attempt %d): %w", method, url, attempt, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		c.rec.status(label, resp.StatusCode, resp.Header)
		out := rawResp{status: resp.StatusCode, header: resp.Header, body: b, attempts: attempt}
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if attempt > 1 {
			c.rec.add("requests retried after 429/503", 1)
			if !retryable {
				c.rec.add(fmt.Sprintf("retried requests ending %d", resp.StatusCode), 1)
			}
		}
		if !retryable {
			return out, nil
		}
		if attempt >= c.maxAttempts {
			c.rec.add("requests given up after retries", 1)
			return out, nil
		}
		c.rec.add("429/503 answers retried", 1)
		wait := c.retryCap
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			wait = min(time.Duration(s)*time.Second, c.retryCap)
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// pull GETs url and checks the body: its sha256 is dgst (blobs), or it
// equals want (manifests, when want is not nil). A body cut short (the
// store's answer broke off after the registry sent its headers) is tried
// again; so is a 429/503. It returns the final status and a description of
// what is wrong, "" when the content is right.
func (c *rawClient) pull(ctx context.Context, label, url, dgst string, want []byte, hdr ...string) (int, string) {
	const attempts = 6
	status, what := 0, ""
	for i := 0; i < attempts; i++ {
		var cut bool
		status, what, cut = c.pullOnce(ctx, label, url, dgst, want, hdr...)
		retry := cut || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
		if !retry || ctx.Err() != nil {
			return status, what
		}
		if cut {
			c.rec.add("pull bodies cut short (retried)", 1)
		}
		time.Sleep(min(c.retryCap, 200*time.Millisecond))
	}
	return status, what + fmt.Sprintf(" (still failing after %d attempts)", attempts)
}

func (c *rawClient) pullOnce(ctx context.Context, label, url, dgst string, want []byte, hdr ...string) (status int, what string, cut bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+url, nil)
	if err != nil {
		return 0, err.Error(), false
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Sprintf("GET %s: %v", url, err), false
	}
	defer resp.Body.Close()
	c.rec.status(label, resp.StatusCode, resp.Header)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return resp.StatusCode, fmt.Sprintf("GET %s: %d %s", url, resp.StatusCode, b), false
	}
	h := sha256.New()
	var buf bytes.Buffer
	w := io.Writer(h)
	if want != nil {
		w = io.MultiWriter(h, &buf)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil || (resp.ContentLength >= 0 && n != resp.ContentLength) {
		return resp.StatusCode, fmt.Sprintf("GET %s: body cut after %d of %d bytes: %v", url, n, resp.ContentLength, err), true
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); dgst != "" && got != dgst {
		return resp.StatusCode, fmt.Sprintf("GET %s: %d bytes with digest %s, want %s", url, n, got, dgst), false
	}
	if want != nil && !bytes.Equal(buf.Bytes(), want) {
		return resp.StatusCode, fmt.Sprintf("GET %s: body differs from what was pushed (%d bytes, want %d)", url, buf.Len(), len(want)), false
	}
	if dgst != "" && resp.Header.Get("Docker-Content-Digest") != "" && resp.Header.Get("Docker-Content-Digest") != dgst {
		return resp.StatusCode, fmt.Sprintf("GET %s: Docker-Content-Digest %s, want %s", url, resp.Header.Get("Docker-Content-Digest"), dgst), false
	}
	return resp.StatusCode, "", false
}

// recordingTransport records every answer a client library got (each of
// its own retries included), so that its internal retries cannot hide a
// bare 500.
type recordingTransport struct {
	next http.RoundTripper
	rec  *faultRecorder
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	label := "ggcr " + req.Method + " " + apiResource(req.URL.Path)
	t.rec.status(label, resp.StatusCode, resp.Header)
	ok := resp.StatusCode < 300 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
		resp.StatusCode == http.StatusNotFound && req.Method == http.MethodHead // existence checks
	if !ok {
		t.rec.problem("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	return resp, nil
}

// apiResource names the kind of distribution API path, for the tables.
func apiResource(path string) string {
	switch {
	case strings.Contains(path, "/blobs/uploads/"):
		return "upload"
	case strings.Contains(path, "/blobs/"):
		return "blob"
	case strings.Contains(path, "/manifests/"):
		return "manifest"
	}
	return path
}
