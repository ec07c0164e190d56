package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratus-registry/stratus/storage/azure/azuretest"
)

// azureFaults sits between stratus and Azurite. In random mode it answers
// a share of requests with 503 ServerBusy (Azure's throttling), resets
// the connection after Azurite applied the request (a lost answer), or
// passes them; in forced mode every request gets the given status and
// error code.
type azureFaults struct {
	random        atomic.Bool
	forcedStatus  atomic.Int64
	forcedCode    atomic.Value // string
	busy, dropped atomic.Int64
	mu            sync.Mutex
	rng           *rand.Rand
}

func (f *azureFaults) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64()
}

func newAzureFaults(t *testing.T, target string) (*azureFaults, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &azureFaults{rng: rand.New(rand.NewPCG(7, 8))}
	f.forcedCode.Store("")
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: u.Scheme, Host: u.Host}) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status := int(f.forcedStatus.Load()); status != 0 {
			io.Copy(io.Discard, r.Body)
			if code := f.forcedCode.Load().(string); code != "" {
				w.Header().Set("x-ms-error-code", code)
			}
			w.WriteHeader(status)
			return
		}
		// Every request may fail: data objects, blocks, segments and
		// markers, and the registry's record, link and catalog writes.
		if f.random.Load() {
			switch p := f.roll(); {
			case p < 0.20:
				f.busy.Add(1)
				io.Copy(io.Discard, r.Body)
				w.Header().Set("x-ms-error-code", "ServerBusy")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			case p < 0.30:
				// Let Azurite apply it, then lose the answer.
				f.dropped.Add(1)
				rec := httptest.NewRecorder()
				rp.ServeHTTP(rec, r)
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						tc.SetLinger(0)
					}
					conn.Close()
				}
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL + u.Path
}

// TestAzureFaults pushes blobs through a store that throttles and loses
// answers (applied, then the connection reset) on every kind of request,
// the registry's record and link writes included: every answer is a
// success or a clean retryable error (429/503 with Retry-After, never a
// bare 500), nothing acknowledged or visible is corrupt, and persistent
// ServerBusy reaches the client as 429 while a persistent plain 503 is a
// 503.
func TestAzureFaults(t *testing.T) {
	az := azuretest.Start(t)
	f, proxyURL := newAzureFaults(t, az.ServiceURL)
	args := append(azureArgs(az, uniquePrefix(t)),
		"--set", "storage.azure.service_url="+proxyURL,
		"--set", "storage.azure.max_retries=1", "--set", "storage.azure.retry_delay=50ms")
	srv := startServer(t, args)

	type blob struct {
		seed byte
		n    int64
		dgst string
	}
	push := func(b blob, chunked bool) (int, string) {
		data, _ := io.ReadAll(newPattern(b.seed, b.n))
		if !chunked {
			r := httpDo(t, "POST", srv.URL()+"/v2/faults/blobs/uploads/?digest="+b.dgst, data)
			return r.StatusCode, r.Header.Get("Retry-After")
		}
		r := httpDo(t, "POST", srv.URL()+"/v2/faults/blobs/uploads/", nil)
		if r.StatusCode != 202 {
			return r.StatusCode, r.Header.Get("Retry-After")
		}
		r = httpDo(t, "PATCH", srv.URL()+r.Header.Get("Location"), data, "Content-Range", fmt.Sprintf("0-%d", b.n-1))
		if r.StatusCode != 202 {
			return r.StatusCode, r.Header.Get("Retry-After")
		}
		r = httpDo(t, "PUT", srv.URL()+r.Header.Get("Location")+"?digest="+b.dgst, nil)
		return r.StatusCode, r.Header.Get("Retry-After")
	}

	f.random.Store(true)
	var acked, failed []blob
	statuses := map[int]int{}
	for i := range 40 {
		b := blob{seed: byte(150 + i), n: int64(64<<10 + i*97<<10)}
		b.dgst = patternDigest(b.seed, b.n)
		status, retryAfter := push(b, i%2 == 1)
		statuses[status]++
		switch status {
		case 201:
			acked = append(acked, b)
		case 429, 503:
			if _, err := strconv.Atoi(retryAfter); err != nil {
				t.Errorf("blob %d: %d without a Retry-After", i, status)
			}
			failed = append(failed, b)
		default:
			t.Errorf("blob %d: status %d is neither success nor a clean retryable error", i, status)
		}
	}
	f.random.Store(false)
	t.Logf("statuses %v; injected %d ServerBusy, %d lost answers", statuses, f.busy.Load(), f.dropped.Load())
	if f.busy.Load() == 0 || f.dropped.Load() == 0 {
		t.Fatal("not every kind of fault was injected")
	}
	if len(acked) == 0 {
		t.Fatal("nothing succeeded under faults: retries are not working")
	}
	for _, b := range acked {
		verifyStream(t, srv.URL()+"/v2/faults/blobs/"+b.dgst, b.dgst, b.n)
	}
	for _, b := range failed {
		resp, err := http.Get(srv.URL() + "/v2/faults/blobs/" + b.dgst)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if sum := sha256.Sum256(body); "sha256:"+hex.EncodeToString(sum[:]) != b.dgst {
				t.Fatalf("a failed push left a corrupt blob %s", b.dgst)
			}
		} else if resp.StatusCode != 404 {
			t.Fatalf("GET of a failed push: %d", resp.StatusCode)
		}
	}

	for _, tc := range []struct {
		status int
		code   string
		want   int
	}{{503, "ServerBusy", 429}, {429, "", 429}, {503, "", 503}, {500, "InternalError", 503}} {
		f.forcedStatus.Store(int64(tc.status))
		f.forcedCode.Store(tc.code)
		b := blob{seed: 99, n: 1000}
		b.dgst = patternDigest(b.seed, b.n)
		status, retryAfter := push(b, false)
		f.forcedStatus.Store(0)
		if _, err := strconv.Atoi(retryAfter); status != tc.want || err != nil {
			t.Errorf("persistent %d %s from Azure: client got %d, Retry-After %q; want %d with Retry-After", tc.status, tc.code, status, retryAfter, tc.want)
		}
	}
}
