package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// patternReader generates n deterministic bytes without holding them.
type patternReader struct {
	rng       *rand.ChaCha8
	remaining int64
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), remaining: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.remaining {
		b = b[:p.remaining]
	}
	p.rng.Read(b)
	p.remaining -= int64(len(b))
	return len(b), nil
}

func patternDigest(seed byte, n int64) string {
	h := sha256.New()
	io.Copy(h, newPattern(seed, n))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// chunkedPush uploads n pattern bytes in chunk-sized PATCHes, each sent to
// the next base URL in turn, and finishes with PUT ?digest=.
func chunkedPush(t *testing.T, bases []string, repo string, seed byte, n, chunk int64) string {
	t.Helper()
	dgst := patternDigest(seed, n)
	resp := httpDo(t, "POST", bases[0]+"/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	src := newPattern(seed, n)
	buf := make([]byte, chunk)
	i := 0
	for off := int64(0); off < n; {
		m, _ := io.ReadFull(src, buf[:min(chunk, n-off)])
		base := bases[i%len(bases)]
		i++
		r := httpDo(t, "PATCH", base+loc, buf[:m], "Content-Range", fmt.Sprintf("%d-%d", off, off+int64(m)-1))
		if r.StatusCode != 202 {
			t.Fatalf("PATCH at %d: %s", off, r.Status)
		}
		loc = r.Header.Get("Location")
		off += int64(m)
	}
	if r := httpDo(t, "PUT", bases[i%len(bases)]+loc+"?digest="+dgst, nil); r.StatusCode != 201 {
		t.Fatalf("PUT: %s", r.Status)
	}
	return dgst
}

// verifyStream pulls a blob and checks its digest without buffering it.
func verifyStream(t *testing.T, url, dgst string, n int64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s after %d bytes: %v", url, resp.Status, got, err)
	}
	if d := "sha256:" + hex.EncodeToString(h.Sum(nil)); d != dgst || got != n {
		t.Fatalf("pulled %d bytes with digest %s, want %d bytes %s", got, d, n, dgst)
	}
}

// TestS3LargeBlobSmallChunks streams a 1 GiB blob (64 MiB with -short) to
// `stratus serve` on MinIO in 1 MiB PATCHes, the way regctl does, and pulls
// it back; plus an image push and pull with go-containerregistry.
func TestS3LargeBlobSmallChunks(t *testing.T) {
	srv := startServer(t, s3Args(s3test.Start(t), uniquePrefix(t)))
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	start := time.Now()
	dgst := chunkedPush(t, []string{srv.URL()}, "big/blob", 3, size, 1<<20)
	t.Logf("pushed %d MiB in 1 MiB chunks in %s", size>>20, time.Since(start).Round(time.Millisecond))
	verifyStream(t, srv.URL()+"/v2/big/blob/blobs/"+dgst, dgst, size)

	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, srv, "big/img:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	layersEqual(t, img, got)
}

// TestS3UploadResumedByAnotherProcess: one replica takes the first half of
// a chunked upload and dies; a second process, sharing MinIO and Redis,
// finishes it.
func TestS3UploadResumedByAnotherProcess(t *testing.T) {
	mio := s3test.Start(t)
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	args := append(s3Args(mio, uniquePrefix(t)), "--set", "redis.addrs="+redis.Addr(), "--set", "registry.lease_ttl=2s")
	a := startServer(t, args)
	b := startServer(t, args)
	size, chunk := int64(24<<20+5), int64(3<<20)
	dgst := patternDigest(9, size)
	resp := httpDo(t, "POST", a.URL()+"/v2/resume/blob/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	src := newPattern(9, size)
	buf := make([]byte, chunk)
	off := int64(0)
	for ; off < size/2; off += chunk {
		io.ReadFull(src, buf)
		if r := httpDo(t, "PATCH", a.URL()+loc, buf, "Content-Range", fmt.Sprintf("%d-%d", off, off+chunk-1)); r.StatusCode != 202 {
			t.Fatalf("PATCH on the first process: %s", r.Status)
		}
	}
	a.kill()
	<-a.done
	st := httpDo(t, "GET", b.URL()+loc, nil)
	if want := fmt.Sprintf("0-%d", off-1); st.StatusCode != 204 || st.Header.Get("Range") != want {
		t.Fatalf("status on the second process: %s, Range %q, want %q", st.Status, st.Header.Get("Range"), want)
	}
	for off < size {
		m, _ := io.ReadFull(src, buf[:min(chunk, size-off)])
		if r := httpDo(t, "PATCH", b.URL()+loc, buf[:m], "Content-Range", fmt.Sprintf("%d-%d", off, off+int64(m)-1)); r.StatusCode != 202 {
			t.Fatalf("PATCH on the second process: %s", r.Status)
		}
		off += int64(m)
	}
	if r := httpDo(t, "PUT", b.URL()+loc+"?digest="+dgst, nil); r.StatusCode != 201 {
		t.Fatalf("PUT on the second process: %s", r.Status)
	}
	verifyStream(t, b.URL()+"/v2/resume/blob/blobs/"+dgst, dgst, size)
}

// TestS3Faults pushes blobs through a store that throttles, resets and
// stalls. Every answer is a success or a clean retryable error (429/503
// with Retry-After, never a bare 500), and nothing acknowledged or visible
// is ever corrupt.
func TestS3Faults(t *testing.T) {
	mio := s3test.Start(t)
	var plan faultPlan
	plan.set(faultBefore, 0.08, allS3Ops()...)
	plan.set(faultReset, 0.04, allS3Ops()...)
	plan.set(faultLag, 0.08, allS3Ops()...)
	plan.lag = 200 * time.Millisecond
	f := newS3FaultProxy(t, mio.Endpoint, 42, plan)
	args := s3ArgsVia(mio, uniquePrefix(t), f.URL)
	args = append(args, "--set", "storage.s3.max_retries=1", "--set", "storage.s3.request_timeout=5s")
	srv := startServer(t, args)
	f.enabled.Store(true)

	type blob struct {
		seed byte
		n    int64
		dgst string
	}
	var acked, failed []blob
	statuses := map[int]int{}
	for i := 0; i < 40; i++ {
		b := blob{seed: byte(100 + i), n: int64(64<<10 + i*37<<10)}
		b.dgst = patternDigest(b.seed, b.n)
		var status int
		var retryAfter string
		if i%2 == 0 { // monolithic
			data, _ := io.ReadAll(newPattern(b.seed, b.n))
			r := httpDo(t, "POST", srv.URL()+"/v2/faults/blobs/uploads/?digest="+b.dgst, data)
			status, retryAfter = r.StatusCode, r.Header.Get("Retry-After")
		} else { // POST, PATCH, PUT
			r := httpDo(t, "POST", srv.URL()+"/v2/faults/blobs/uploads/", nil)
			status, retryAfter = r.StatusCode, r.Header.Get("Retry-After")
			if status == 202 {
				data, _ := io.ReadAll(newPattern(b.seed, b.n))
				loc := r.Header.Get("Location")
				r = httpDo(t, "PATCH", srv.URL()+loc, data, "Content-Range", fmt.Sprintf("0-%d", b.n-1))
				status, retryAfter = r.StatusCode, r.Header.Get("Retry-After")
				if status == 202 {
					r = httpDo(t, "PUT", srv.URL()+r.Header.Get("Location")+"?digest="+b.dgst, nil)
					status, retryAfter = r.StatusCode, r.Header.Get("Retry-After")
				}
			}
		}
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
	f.enabled.Store(false)
	t.Logf("statuses %v; injected %d SlowDown, %d resets, %d delays", statuses, f.injectedTotal(faultBefore), f.injectedTotal(faultReset), f.injectedTotal(faultLag))
	if f.injectedTotal(faultBefore)+f.injectedTotal(faultReset) == 0 {
		t.Fatal("no fault was injected")
	}
	for _, b := range acked {
		verifyStream(t, srv.URL()+"/v2/faults/blobs/"+b.dgst, b.dgst, b.n)
	}
	// A failed push is either absent or, if its commit did land, intact.
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
	if len(acked) == 0 {
		t.Fatal("nothing succeeded under faults: retries are not working")
	}
}

// TestS3RedirectedPulls: with storage.s3.redirect on, blob GETs answer 307
// to a presigned URL that serves the bytes; HEAD and manifests stay local.
func TestS3RedirectedPulls(t *testing.T) {
	mio := s3test.Start(t)
	srv := startServer(t, append(s3Args(mio, uniquePrefix(t)), "--set", "storage.s3.redirect=true", "--set", "storage.s3.redirect_expiry=5m"))
	img, err := random.Image(128<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, srv, "redirect/img:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(srv.URL() + "/v2/redirect/img/blobs/" + ld.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, mio.Endpoint) || !strings.Contains(loc, "X-Amz-Signature") {
		t.Fatalf("GET blob: %s, Location %q", resp.Status, loc)
	}
	// The configured redirect_expiry (5m), not a built-in default.
	if u, err := url.Parse(loc); err != nil || u.Query().Get("X-Amz-Expires") != "300" {
		t.Fatalf("presigned URL expiry %q; want 300 s from storage.s3.redirect_expiry=5m", u.Query().Get("X-Amz-Expires"))
	}
	// A real client follows the redirect and gets the right bytes.
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	layersEqual(t, img, got)
}

// TestS3PushMemoryBounded checks the streaming promise on the real binary
// (built without -race, whose shadow memory would swamp the number): one
// 256 MiB push in 8 MiB chunks keeps the process's peak RSS under 100 MiB,
// whatever the blob size, because an upload holds one part buffer.
func TestS3PushMemoryBounded(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stratus")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/stratus-registry/stratus/cmd/stratus").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := startBinary(t, bin, s3Args(s3test.Start(t), uniquePrefix(t)))
	size := int64(256 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	chunkedPush(t, []string{srv.URL()}, "rss/blob", 5, size, 8<<20)
	peak := peakRSS(t, srv.proc.Pid())
	t.Logf("peak RSS after a %d MiB push in 8 MiB chunks: %d MiB", size>>20, peak>>20)
	if peak > 100<<20 {
		t.Fatalf("peak RSS %d MiB: memory is not bounded by a part", peak>>20)
	}
}

// peakRSS reads VmHWM, the process's peak resident set, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
