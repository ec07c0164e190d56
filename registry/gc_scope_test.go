package registry

import (
	"context"
	"github.com/opencontainers/go-digest"
	"testing"
)

// TestGCUnlinkDoesNotHideSharedBlob forces GC to hold its claim on a shared
// layer's link in one repository (B, whose image was deleted) and checks
// that, meanwhile, the same layer stays fully usable in repository A, where
// a tagged image uses it: HEAD, GET, a manifest PUT referencing it, and a
// mount from A into C. Claims are scoped to what GC deletes, so the only
// repository that may stop seeing the layer is B.
func TestGCUnlinkDoesNotHideSharedBlob(t *testing.T) {
	for name, newLocks := range lockStores(t) {
		t.Run(name, func(t *testing.T) {
			tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
			layer := []byte("shared base layer")
			l := sha(layer)
			_, live := tr.imageManifest("a", layer)
			tr.expect(tr.do("PUT", "/v2/a/manifests/v1", live, "Content-Type", mtOCIManifest), 201, "")
			goneD, gone := tr.imageManifest("b", layer)
			tr.expect(tr.do("PUT", "/v2/b/manifests/"+goneD, gone, "Content-Type", mtOCIManifest), 201, "")
			tr.expect(tr.do("DELETE", "/v2/b/manifests/"+goneD, nil), 202, "")
			ageOut()

			g := newGate()
			reg.hooks = &hooks{afterClaim: func(key string, ok bool) {
				if key == linkKey("b", mustDigest(t, l)) && ok {
					g.pass()
				}
			}}
			done := make(chan error, 1)
			go func() { _, err := reg.RunGC(context.Background(), false); done <- err }()
			select {
			case <-g.reached:
			case err := <-done:
				t.Fatalf("GC finished (err %v) without claiming b's link to the layer", err)
			}
			// GC now holds the claim on b's link to the layer.
			tr.expect(tr.do("HEAD", "/v2/a/blobs/"+l, nil), 200, "")
			tr.expect(tr.do("GET", "/v2/a/blobs/"+l, nil), 200, "")
			_, next := tr.imageManifest("a", layer, []byte("new top layer"))
			tr.expect(tr.do("PUT", "/v2/a/manifests/v2", next, "Content-Type", mtOCIManifest), 201, "")
			tr.expect(tr.do("POST", "/v2/c/blobs/uploads/?mount="+l+"&from=a", nil), 201, "")
			tr.expect(tr.do("HEAD", "/v2/b/blobs/"+l, nil), 404, "")
			close(g.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			reg.hooks = nil
			for _, repo := range []string{"a", "c"} {
				tr.expect(tr.do("GET", "/v2/"+repo+"/blobs/"+l, nil), 200, "")
			}
			tr.expect(tr.do("GET", "/v2/a/manifests/v2", nil), 200, "")
			tr.expect(tr.do("GET", "/v2/b/blobs/"+l, nil), 404, codeBlobUnknown)
		})
	}
}

func mustDigest(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := ParseDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
