package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// applyThenDropPlan is issue 10's fault mix: on every S3 operation, a few
// percent of 503 SlowDown before the store sees the request and a few
// percent of requests the store applies but whose answer is lost; plus
// GetObject bodies cut in half.
func applyThenDropPlan() faultPlan {
	var p faultPlan
	p.set(faultBefore, 0.04, s3Dialect.faulted...)
	p.set(faultAfter, 0.04, s3Dialect.faulted...)
	p.set(faultTruncate, 0.03, opGetObject)
	p.forceAfter = 2 // rare operations (AbortMultipartUpload) are covered too
	return p
}

// TestS3ApplyThenDrop (issue 10): `stratus serve` on MinIO behind a proxy
// that answers some S3 requests 503 SlowDown, applies others and then
// resets the connection before the answer arrives, and cuts GetObject
// bodies. Six workers push blobs (monolithic, and chunked in ~1 MiB
// PATCHes, some above the part size), manifests, tags and images
// (go-containerregistry), and pull what was acknowledged. Then faults go
// off and every acknowledged blob, manifest, tag and image is read back
// byte for byte. Nothing acknowledged may be lost; every answer is a
// success, a 429/503 with Retry-After that a resend of the same request
// cures, or the client's own fault; never a bare 500; and every fault kind
// must have happened on every operation, or the test proves nothing.
func TestS3ApplyThenDrop(t *testing.T) {
	seed := faultSeed(t)
	duration, workers := 40*time.Second, 6
	if testing.Short() {
		duration = 15 * time.Second
	}
	mio := s3test.Start(t)
	proxy := newFaultProxy(t, s3Dialect, mio.Endpoint, seed, applyThenDropPlan())
	const partSize = 5 << 20 // S3's minimum: multipart uploads at moderate volume
	srv := startServer(t, append(s3ArgsVia(mio, uniquePrefix(t), proxy.URL),
		"--set", "storage.s3.part_size=5MiB", "--set", "storage.s3.request_timeout=15s"))

	rec := newFaultRecorder()
	client := &rawClient{
		base: srv.URL(), rec: rec, maxAttempts: 6, retryCap: 500 * time.Millisecond,
		hc: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	}
	wl := &faultWorkload{seed: seed, addr: srv.Addr, client: client, rec: rec,
		deadline: time.Now().Add(duration), maxOps: 400, partSize: partSize}
	for k := range 4 {
		wl.shared = append(wl.shared, newContent(seed, 1<<62|uint64(k), 96<<10+int64(k)*37<<10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()

	proxy.enabled.Store(true)
	start := time.Now()
	ws := make([]*faultWorker, workers)
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = newFaultWorker(wl, i)
		wg.Go(func() { ws[i].run(ctx) })
	}
	wg.Wait()
	proxy.enabled.Store(false)
	elapsed := time.Since(start)

	v := verifyAcknowledged(ctx, client, srv.Addr, ws)
	logFaultSummary(t, seed, elapsed, workers, v, rec, proxy, srv.Log())

	if n := len(v.lost); n > 0 {
		t.Errorf("%d acknowledged items lost or wrong after faults:\n%s", n, firstLines(v.lost, 40))
	}
	if n := len(v.corrupt); n > 0 {
		t.Errorf("%d unacknowledged pushes left a corrupt blob visible:\n%s", n, firstLines(v.corrupt, 20))
	}
	if bad := serverErrorCodes(rec); len(bad) > 0 {
		t.Errorf("server errors other than 503 (a bare 500 is never allowed): %v", bad)
	}
	if p := rec.problemList(); len(p) > 0 {
		t.Errorf("%d answers broke the registry's promises:\n%s", len(p), firstLines(p, 40))
	}
	if p := proxy.problems(); len(p) > 0 {
		t.Errorf("the fault proxy misbehaved or misread requests:\n%s", firstLines(p, 20))
	}
	if miss := proxy.uncovered(s3Dialect.faulted); len(miss) > 0 {
		t.Errorf("vacuous run: these faults never happened:\n%s", strings.Join(miss, "\n"))
	}
	if v.total(v.acked) == 0 {
		t.Error("nothing was acknowledged under faults")
	}
}

// faultVerdict is what reading back the workload's pushes found.
type faultVerdict struct {
	acked, verified map[string]int // by kind: blob, manifest, tag, image
	lost            []string
	// Pushes that were not acknowledged: each is absent, or present
	// and intact (its commit landed); never present and corrupt.
	absent, landed int
	corrupt        []string
}

func (v *faultVerdict) total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func (v *faultVerdict) check(kind, what, problem string) {
	v.acked[kind]++
	if problem == "" {
		v.verified[kind]++
		return
	}
	v.lost = append(v.lost, kind+" "+what+": "+problem)
}

const manifestAccept = mtOCIManifest + ", application/vnd.docker.distribution.manifest.v2+json"

// verifyAcknowledged reads back, with faults off, everything the workers
// were told was stored.
func verifyAcknowledged(ctx context.Context, c *rawClient, addr string, ws []*faultWorker) *faultVerdict {
	v := &faultVerdict{acked: map[string]int{}, verified: map[string]int{}}
	for _, w := range ws {
		seen := map[string]bool{}
		for _, b := range w.blobs {
			if seen[b.dgst] {
				continue
			}
			seen[b.dgst] = true
			_, p := c.pull(ctx, "verify GET blob", "/v2/"+w.repo+"/blobs/"+b.dgst, b.dgst, nil)
			v.check("blob", w.repo+"@"+b.dgst, p)
		}
		for _, m := range w.manifests {
			_, p := c.pull(ctx, "verify GET manifest", "/v2/"+m.repo+"/manifests/"+m.dgst, m.dgst, m.body, "Accept", manifestAccept)
			v.check("manifest", m.repo+"@"+m.dgst, p)
			for _, tag := range m.tags {
				_, p := c.pull(ctx, "verify GET manifest", "/v2/"+m.repo+"/manifests/"+tag, m.dgst, m.body, "Accept", manifestAccept)
				v.check("tag", m.repo+":"+tag, p)
			}
		}
		for _, im := range w.images {
			v.check("image", im.repo+":"+im.tag, verifyImage(ctx, c, addr, im))
		}
		for _, u := range w.unacked {
			switch status, p := c.pull(ctx, "verify GET unacknowledged blob", "/v2/"+w.repo+"/blobs/"+u.dgst, u.dgst, nil); {
			case status == http.StatusNotFound:
				v.absent++
			case p == "":
				v.landed++
			default:
				v.corrupt = append(v.corrupt, p)
			}
		}
	}
	return v
}

// verifyImage checks an image pushed by go-containerregistry: raw, the tag
// serves the manifest bytes pushed and every blob hashes to its digest;
// and the library pulls it back.
func verifyImage(ctx context.Context, c *rawClient, addr string, im ackedImage) string {
	if _, p := c.pull(ctx, "verify GET manifest", "/v2/"+im.repo+"/manifests/"+im.tag, im.dgst, im.raw, "Accept", manifestAccept); p != "" {
		return p
	}
	for _, d := range im.blobs {
		if _, p := c.pull(ctx, "verify GET blob", "/v2/"+im.repo+"/blobs/"+d, d, nil); p != "" {
			return p
		}
	}
	ref, err := name.ParseReference(addr+"/"+im.repo+":"+im.tag, name.Insecure)
	if err != nil {
		return err.Error()
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithTransport(recordingTransport{next: http.DefaultTransport, rec: c.rec}))
	if err != nil {
		return "go-containerregistry pull: " + err.Error()
	}
	if d, err := img.Digest(); err != nil || d.String() != im.dgst {
		return fmt.Sprintf("go-containerregistry pulled digest %v (%v), want %s", d, err, im.dgst)
	}
	layers, err := img.Layers()
	if err != nil {
		return "go-containerregistry layers: " + err.Error()
	}
	for i, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Sprintf("layer %d: %v", i, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if got := hex.EncodeToString(h.Sum(nil)); err != nil || got != d.Hex {
			return fmt.Sprintf("layer %d pulled by go-containerregistry: sha256 %s, want %s (%v)", i, got, d.Hex, err)
		}
	}
	return ""
}

// serverErrorCodes counts the answers >= 500 other than 503.
func serverErrorCodes(rec *faultRecorder) map[int]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	bad := map[int]int{}
	for code, n := range rec.byCode {
		if code >= 500 && code != http.StatusServiceUnavailable {
			bad[code] = n
		}
	}
	return bad
}

var (
	logErrRE = regexp.MustCompile(`err=("(?:[^"\\]|\\.)*"|\S+)`)
	logIDRE  = regexp.MustCompile(`[0-9a-f]{12,}`)
)

// causesOf500 groups the server's log lines for answers with status 500
// by their error, ids elided, so the summary shows what went wrong.
func causesOf500(log string) map[string]int {
	causes := map[string]int{}
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "status=500") {
			continue
		}
		cause := "(no err)"
		if m := logErrRE.FindStringSubmatch(l); m != nil {
			cause = logIDRE.ReplaceAllString(m[1], "…")
		}
		causes[cause]++
	}
	return causes
}

func logFaultSummary(t *testing.T, seed uint64, elapsed time.Duration, workers int, v *faultVerdict, rec *faultRecorder, proxy *faultProxy, serverLog string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %d workers, workload %s\n", seed, workers, elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "%-10s %6s %9s %5s\n", "kind", "acked", "verified", "lost")
	for _, k := range []string{"blob", "manifest", "tag", "image"} {
		fmt.Fprintf(&b, "%-10s %6d %9d %5d\n", k, v.acked[k], v.verified[k], v.acked[k]-v.verified[k])
	}
	fmt.Fprintf(&b, "%-10s %6d %9d %5d\n", "total", v.total(v.acked), v.total(v.verified), v.total(v.acked)-v.total(v.verified))
	fmt.Fprintf(&b, "unacknowledged blob pushes: %d absent, %d landed intact, %d corrupt\n\n",
		v.absent, v.landed, len(v.corrupt))
	fmt.Fprintf(&b, "registry answers (every attempt):\n%s\n", rec.table())
	fmt.Fprintf(&b, "S3 faults injected:\n%s\n", proxy.table())
	causes := causesOf500(serverLog)
	keys := make([]string, 0, len(causes))
	for k := range causes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return causes[b] - causes[a] })
	fmt.Fprintf(&b, "causes of 500 in the server log:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%5d  %s\n", causes[k], k)
	}
	t.Logf("summary\n%s", b.String())
}

func firstLines(lines []string, n int) string {
	if len(lines) > n {
		return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n... and %d more", len(lines)-n)
	}
	return strings.Join(lines, "\n")
}
