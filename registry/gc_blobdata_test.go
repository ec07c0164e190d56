package registry

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/registry/content"
)

// TestGCPushAgainBetweenRecordAndData: a pass deletes a collected blob's
// record in the blob sweep and its data later, in the orphan sweep (found
// through the data index, under a claim of the data key). The test holds
// the pass right after that claim, pushes the same blob again (a new
// upload: new data, new record) with a tagged manifest, and checks that
// the pass then deletes only the old data, and that the new push is
// served byte for byte, then and after another pass.
func TestGCPushAgainBetweenRecordAndData(t *testing.T) {
	for name, newLocks := range lockStores(t) {
		t.Run(name, func(t *testing.T) {
			tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
			layer := []byte("a layer collected, then pushed again")
			l := tr.pushBlob("x", layer) // referenced by no manifest
			old := dataKeysOf(t, tr, l)
			if len(old) != 1 {
				t.Fatalf("data of the first upload: %v", old)
			}
			ageOut()

			g, done := gcHeldAfterClaim(reg, old[0])
			// The record went first: the blob reads as unknown everywhere.
			tr.expect(tr.do("HEAD", "/v2/x/blobs/"+l, nil), 404, "")
			_, man := tr.imageManifest("y", layer)
			tr.expect(tr.do("PUT", "/v2/y/manifests/v1", man, "Content-Type", mtOCIManifest), 201, "")
			close(g.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			reg.hooks = nil

			now := dataKeysOf(t, tr, l)
			if len(now) != 1 || now[0] == old[0] {
				t.Fatalf("data of the blob after the pass: %v; want only the second upload's (the first was %s)", now, old[0])
			}
			if slices.Contains(tr.keys(), old[0]) {
				t.Fatalf("the first upload's data %s survived the pass", old[0])
			}
			for range 2 {
				r := tr.do("GET", "/v2/y/blobs/"+l, nil)
				if r.status != 200 || !bytes.Equal(r.body, layer) {
					t.Fatalf("GET after the pass: %d %q", r.status, r.body)
				}
				ageOut()
				mustGC(t, reg)
			}
		})
	}
}

// dataKeysOf lists the data objects the data index says hold blob d.
func dataKeysOf(t *testing.T, tr *testRegistry, d string) []string {
	t.Helper()
	dg := mustDigest(t, d)
	var out []string
	for _, k := range tr.keys() {
		id, rest, ok := strings.Cut(strings.TrimPrefix(k, "datarefs/"), "/")
		if ok && strings.HasPrefix(k, "datarefs/") && rest == dg.Algorithm().String()+"-"+dg.Encoded() {
			out = append(out, content.DataKey(id))
		}
	}
	return out
}
