package integration

import (
	"net/http"
	"strings"
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
