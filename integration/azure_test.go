package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/storage/azure/azuretest"
)

// azureArgs are the `stratus serve` flags for Azurite under prefix, with
// the well-known development account's shared key.
func azureArgs(srv *azuretest.Server, prefix string) []string {
	c := srv.Config(prefix)
	return []string{
		"--set", "storage.driver=azure",
		"--set", "storage.azure.account_name=" + c.AccountName,
		"--set", "storage.azure.container=" + c.Container,
		"--set", "storage.azure.root_directory=" + c.RootDirectory,
		"--set", "storage.azure.service_url=" + c.ServiceURL,
		"--set", "storage.azure.account_key=" + c.AccountKey,
	}
}

// TestAzureLargeBlobSmallChunks streams a blob over 256 MiB (64 MiB with
// -short) to `stratus serve` on Azurite in 1 MiB PATCHes, the way regctl
// does, and pulls it back byte for byte; plus an image push and pull with
// go-containerregistry.
func TestAzureLargeBlobSmallChunks(t *testing.T) {
	srv := startServer(t, azureArgs(azuretest.Start(t), uniquePrefix(t)))
	size := int64(300<<20 + 12345)
	if testing.Short() {
		size = 64 << 20
	}
	start := time.Now()
	dgst := chunkedPush(t, []string{srv.URL()}, "big/blob", 4, size, 1<<20)
	t.Logf("pushed %d MiB in 1 MiB chunks in %s", size>>20, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	verifyStream(t, srv.URL()+"/v2/big/blob/blobs/"+dgst, dgst, size)
	t.Logf("pulled it back in %s", time.Since(start).Round(time.Millisecond))

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

// TestAzureUploadResumedByAnotherProcess: one replica takes the first half
// of an upload sent in 1 MiB PATCHes and dies; a second process, sharing
// Azurite and Redis, finishes it from the saved handle (staged blocks and
// tail segments).
func TestAzureUploadResumedByAnotherProcess(t *testing.T) {
	az := azuretest.Start(t)
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	args := append(azureArgs(az, uniquePrefix(t)), "--set", "redis.addrs="+redis.Addr(), "--set", "registry.lease_ttl=2s")
	a := startServer(t, args)
	b := startServer(t, args)
	// 40 MiB + 5: two whole 16 MiB blocks, the kill lands mid-block.
	size, chunk := int64(40<<20+5), int64(1<<20)
	dgst := patternDigest(11, size)
	resp := httpDo(t, "POST", a.URL()+"/v2/resume/blob/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	src := newPattern(11, size)
	buf := make([]byte, chunk)
	off := int64(0)
	for ; off < 23<<20; off += chunk {
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

// TestAzureRedirectedPulls: with storage.azure.redirect on, blob GETs
// answer 307 to an account-key SAS URL on Azurite that serves the bytes.
func TestAzureRedirectedPulls(t *testing.T) {
	az := azuretest.Start(t)
	srv := startServer(t, append(azureArgs(az, uniquePrefix(t)), "--set", "storage.azure.redirect=true", "--set", "storage.azure.redirect_expiry=5m"))
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
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, az.ServiceURL) || !strings.Contains(loc, "sig=") || !strings.Contains(loc, "sp=r") {
		t.Fatalf("GET blob: %s, Location %q", resp.Status, loc)
	}
	// A real client follows the redirect and gets the right bytes.
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	layersEqual(t, img, got)
}
