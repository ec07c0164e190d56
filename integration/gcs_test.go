package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
)

// gcsArgs are the `stratus serve` flags for fake-gcs-server under prefix.
func gcsArgs(srv *gcstest.Server, prefix string) []string {
	c := srv.Config(prefix)
	return []string{
		"--set", "storage.driver=gcs",
		"--set", "storage.gcs.bucket=" + c.Bucket,
		"--set", "storage.gcs.root_directory=" + c.RootDirectory,
		"--set", "storage.gcs.endpoint=" + c.Endpoint,
		"--set", "storage.gcs.anonymous=true",
	}
}

// TestGCSLargeBlobSmallChunks: a 300 MiB blob (64 MiB with -short) in
// 1 MiB PATCHes to `stratus serve` on GCS, pulled back byte-for-byte.
func TestGCSLargeBlobSmallChunks(t *testing.T) {
	size := int64(300 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	largeBlobSmallChunks(t, gcsArgs(gcstest.Start(t), uniquePrefix(t)), size)
}

// TestGCSUploadResumedByAnotherProcess: 1 MiB PATCHes, the first half on
// one process, which is killed, the rest on a second one.
func TestGCSUploadResumedByAnotherProcess(t *testing.T) {
	uploadResumedByAnotherProcess(t, gcsArgs(gcstest.Start(t), uniquePrefix(t)), 24<<20+5, 1<<20)
}

// TestGCSRedirectedPulls: with storage.gcs.redirect on and a service-account
// key, blob GETs answer 307 to a V4 signed URL that serves the bytes, and
// a real client follows it.
func TestGCSRedirectedPulls(t *testing.T) {
	fake := gcstest.Start(t)
	key := gcstest.NewKeyFile(t)
	args := gcsArgs(fake, uniquePrefix(t))
	args = append(args[:len(args)-2], // no anonymous: the key authenticates and signs
		"--set", "storage.gcs.credentials_file="+key.Path,
		"--set", "storage.gcs.redirect=true", "--set", "storage.gcs.redirect_expiry=5m")
	srv := startServer(t, args)
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
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, fake.Endpoint+"/") ||
		!strings.Contains(loc, "X-Goog-Signature=") || !strings.Contains(loc, "X-Goog-Expires=300") {
		t.Fatalf("GET blob: %s, Location %q; want 307 to a V4 signed URL valid 300s", resp.Status, loc)
	}
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	layersEqual(t, img, got)
}

// TestGCSThrottled: while GCS answers every request with 429 (then 503),
// pushes and pulls get 429 (503) with Retry-After after the driver's
// bounded retries, never a 500 or a false 201; afterwards everything
// acknowledged reads back intact.
func TestGCSThrottled(t *testing.T) {
	fake := gcstest.Start(t)
	target, err := url.Parse(fake.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var status atomic.Int32 // 0: pass through
	var refused atomic.Int64
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := int(status.Load()); code != 0 {
			refused.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":{"code":%d,"message":"injected","errors":[{"reason":"rateLimitExceeded"}]}}`, code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	args := gcsArgs(fake, uniquePrefix(t))
	for i := range args {
		if args[i] == "storage.gcs.endpoint="+fake.Endpoint {
			args[i] = "storage.gcs.endpoint=" + proxy.URL
		}
	}
	srv := startServer(t, append(args, "--set", "storage.gcs.max_retries=1"))

	n := int64(200 << 10)
	data, _ := io.ReadAll(newPattern(7, n))
	dgst := patternDigest(7, n)
	if r := httpDo(t, "POST", srv.URL()+"/v2/throttle/blobs/uploads/?digest="+dgst, data); r.StatusCode != 201 {
		t.Fatalf("push before throttling: %s", r.Status)
	}
	other, _ := io.ReadAll(newPattern(8, n))
	for _, code := range []int{429, 503} {
		status.Store(int32(code))
		for _, req := range []struct {
			method, path string
			body         []byte
		}{
			{"GET", "/v2/throttle/blobs/" + dgst, nil},
			{"POST", "/v2/throttle/blobs/uploads/?digest=" + patternDigest(8, n), other},
		} {
			r := httpDo(t, req.method, srv.URL()+req.path, req.body)
			if r.StatusCode != code || r.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s while GCS answers %d: %s, Retry-After %q; want %d with Retry-After",
					req.method, req.path, code, r.Status, r.Header.Get("Retry-After"), code)
			}
		}
	}
	status.Store(0)
	t.Logf("the proxy refused %d requests", refused.Load())
	verifyStream(t, srv.URL()+"/v2/throttle/blobs/"+dgst, dgst, n)
}
