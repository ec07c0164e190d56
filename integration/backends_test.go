package integration

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

// Scenarios that every object-store backend runs the same way, given the
// `stratus serve` flags that select it.

// largeBlobSmallChunks streams a size-byte blob to `stratus serve` in
// 1 MiB PATCHes, the way regctl does, pulls it back byte-for-byte, and
// pushes and pulls an image with go-containerregistry.
func largeBlobSmallChunks(t *testing.T, args []string, size int64) {
	t.Helper()
	srv := startServer(t, args)
	start := time.Now()
	dgst := chunkedPush(t, []string{srv.URL()}, "big/blob", 3, size, 1<<20)
	t.Logf("pushed %d MiB in 1 MiB chunks in %s", size>>20, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	verifyStream(t, srv.URL()+"/v2/big/blob/blobs/"+dgst, dgst, size)
	t.Logf("pulled and verified %d MiB in %s", size>>20, time.Since(start).Round(time.Millisecond))

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

// uploadResumedByAnotherProcess: one replica takes the first half of a
// chunked upload (chunk-byte PATCHes) and dies; a second process, sharing
// the store and Redis, reports the right offset and finishes it.
func uploadResumedByAnotherProcess(t *testing.T, args []string, size, chunk int64) {
	t.Helper()
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	args = append(args, "--set", "redis.addrs="+redis.Addr(), "--set", "registry.lease_ttl=2s")
	a := startServer(t, args)
	b := startServer(t, args)
	dgst := patternDigest(9, size)
	resp := httpDo(t, "POST", a.URL()+"/v2/resume/blob/blobs/uploads/", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST: %s", resp.Status)
	}
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
