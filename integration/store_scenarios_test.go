package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

// Scenarios that every cloud backend of cloudStores runs the same way, one
// subtest per backend.

// eachCloudStore runs scenario as a subtest on every cloud backend that
// has what needs asks for (nil: every one).
func eachCloudStore(t *testing.T, needs func(cloudStore) bool, scenario func(t *testing.T, cs cloudStore)) {
	ran := 0
	for _, cs := range cloudStores() {
		if needs == nil || needs(cs) {
			ran++
			t.Run(cs.name, func(t *testing.T) { scenario(t, cs) })
		}
	}
	if ran == 0 {
		t.Fatal("no cloud backend can run this scenario")
	}
}

// TestLargeBlobSmallChunks streams a large blob (64 MiB with -short) to
// `stratus serve` in 1 MiB PATCHes, the way regctl does, pulls it back
// byte for byte, and pushes and pulls an image with go-containerregistry.
func TestLargeBlobSmallChunks(t *testing.T) {
	eachCloudStore(t, nil, func(t *testing.T, cs cloudStore) {
		size := cs.largeBlob
		if testing.Short() {
			size = 64 << 20
		}
		srv := startServer(t, cs.start(t).args())
		start := time.Now()
		dgst := chunkedPush(t, []string{srv.URL()}, "big/blob", 3, size, 1<<20)
		t.Logf("pushed %d MiB in 1 MiB chunks in %s", size>>20, time.Since(start).Round(time.Millisecond))
		start = time.Now()
		verifyStream(t, srv.URL()+"/v2/big/blob/blobs/"+dgst, dgst, size)
		t.Logf("pulled and verified %d MiB in %s", size>>20, time.Since(start).Round(time.Millisecond))
		pushPullImage(t, ref(t, srv, "big/img:v1"), 1<<20, 3)
	})
}

// TestUploadResumedByAnotherProcess: one replica takes the first part of a
// chunked upload and dies; a second process, sharing the store and Redis,
// reports the right offset and finishes it from the saved upload state.
func TestUploadResumedByAnotherProcess(t *testing.T) {
	eachCloudStore(t, nil, func(t *testing.T, cs cloudStore) {
		redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
		args := append(cs.start(t).args(), "--set", "redis.addrs="+redis.Addr(), "--set", "registry.lease_ttl=2s")
		a := startServer(t, args)
		b := startServer(t, args)
		p := cs.resume
		dgst := patternDigest(9, p.size)
		resp := httpDo(t, "POST", a.URL()+"/v2/resume/blob/blobs/uploads/", nil)
		if resp.StatusCode != 202 {
			t.Fatalf("POST: %s", resp.Status)
		}
		up := &patchUpload{loc: resp.Header.Get("Location"), src: newPattern(9, p.size), size: p.size, buf: make([]byte, p.chunk)}
		for up.off < p.killAt {
			up.patch(t, a.URL(), " on the first process")
		}
		a.kill()
		st := httpDo(t, "GET", b.URL()+up.loc, nil)
		if want := fmt.Sprintf("0-%d", up.off-1); st.StatusCode != 204 || st.Header.Get("Range") != want {
			t.Fatalf("status on the second process: %s, Range %q, want %q", st.Status, st.Header.Get("Range"), want)
		}
		for up.off < p.size {
			up.patch(t, b.URL(), " on the second process")
		}
		if r := httpDo(t, "PUT", b.URL()+up.loc+"?digest="+dgst, nil); r.StatusCode != 201 {
			t.Fatalf("PUT on the second process: %s", r.Status)
		}
		verifyStream(t, b.URL()+"/v2/resume/blob/blobs/"+dgst, dgst, p.size)
	})
}

// TestRedirectedPulls: with the backend's redirect on, blob GETs answer
// 307 to a signed URL on the store, valid for the configured expiry, and a
// real client follows it and gets the right bytes.
func TestRedirectedPulls(t *testing.T) {
	redirects := func(cs cloudStore) bool { return cs.checkRedirect != nil }
	eachCloudStore(t, redirects, func(t *testing.T, cs cloudStore) {
		site := cs.start(t)
		srv := startServer(t, append(site.signingArgs(t),
			"--set", "storage."+cs.name+".redirect=true", "--set", "storage."+cs.name+".redirect_expiry=5m"))
		r := ref(t, srv, "redirect/img:v1")
		img := pushRandomImage(t, r, 128<<10, 2)
		layers, _ := img.Layers()
		ld, _ := layers[0].Digest()
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(srv.URL() + "/v2/redirect/img/blobs/" + ld.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("GET blob: %s, Location %q; want 307", resp.Status, loc)
		}
		if err := cs.checkRedirect(site, loc); err != nil {
			t.Fatalf("GET blob: 307 to %q: %v", loc, err)
		}
		got, err := remote.Image(r)
		if err != nil {
			t.Fatal(err)
		}
		layersEqual(t, img, got)
	})
}
