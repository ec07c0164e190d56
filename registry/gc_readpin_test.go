package registry

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/instrument"
)

// TestGCReadPinInterleavings: blob HEAD/GET check before they pin (so a
// missing blob leaves no pin), and a blob that exists is still pinned
// before the answer, against either order of GC's claim.
func TestGCReadPinInterleavings(t *testing.T) {
	for storeName, newLocks := range lockStores(t) {
		t.Run(storeName, func(t *testing.T) {
			t.Run("head pin before claim keeps the blob", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				d := tr.pushBlob("r", []byte("unreferenced but pulled"))
				ageOut()
				g := newGate()
				reg.hooks = &hooks{afterPin: func(key string, err error) {
					if key == d && err == nil {
						g.pass()
					}
				}}
				head := make(chan resp, 1)
				go func() { head <- tr.do("HEAD", "/v2/r/blobs/"+d, nil) }()
				<-g.reached
				rep, err := reg.RunGC(context.Background(), false)
				if err != nil {
					t.Fatal(err)
				}
				close(g.release)
				tr.expect(<-head, 200, "")
				if rep.BlobsDeleted != 0 || rep.KeptByPin == 0 {
					t.Fatalf("a blob pinned by a HEAD was not kept: %+v", *rep)
				}
				reg.hooks = nil
				tr.expect(tr.do("GET", "/v2/r/blobs/"+d, nil), 200, "")
			})
			t.Run("head during the claim is unknown", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				d := tr.pushBlob("r", []byte("collected while probed"))
				ageOut()
				g, done := gcHeldAfterClaim(reg, d)
				tr.expect(tr.do("HEAD", "/v2/r/blobs/"+d, nil), 404, "")
				tr.expect(tr.do("GET", "/v2/r/blobs/"+d, nil), 404, codeBlobUnknown)
				close(g.release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				tr.expect(tr.do("GET", "/v2/r/blobs/"+d, nil), 404, codeBlobUnknown)
			})
			t.Run("missing blobs take no pin", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				known := tr.pushBlob("r", []byte("known"))
				var mu sync.Mutex
				var pinned []string
				reg.hooks = &hooks{afterPin: func(key string, err error) {
					mu.Lock()
					defer mu.Unlock()
					pinned = append(pinned, key)
				}}
				missing := sha([]byte("never pushed"))
				tr.expect(tr.do("HEAD", "/v2/r/blobs/"+missing, nil), 404, "")
				tr.expect(tr.do("GET", "/v2/r/blobs/"+missing, nil), 404, codeBlobUnknown)
				tr.expect(tr.do("HEAD", "/v2/other/blobs/"+known, nil), 404, "") // not linked there
				mu.Lock()
				if len(pinned) != 0 {
					t.Errorf("requests for missing blobs pinned %v", pinned)
				}
				mu.Unlock()
				tr.expect(tr.do("HEAD", "/v2/r/blobs/"+known, nil), 200, "")
				mu.Lock()
				defer mu.Unlock()
				if want := []string{linkKey("r", mustDigest(t, known)), known}; strings.Join(pinned, ",") != strings.Join(want, ",") {
					t.Errorf("HEAD of an existing blob pinned %v, want %v", pinned, want)
				}
			})
		})
	}
}

// TestGCDataIndexMigration: a store written before the data index (no
// datarefs/ entries) keeps all its content; the first pass verifies its
// data against the records once and backfills the index, and later passes
// read no blob record at all.
func TestGCDataIndexMigration(t *testing.T) {
	metrics := prometheus.NewRegistry()
	m, err := instrument.NewMetrics(metrics)
	if err != nil {
		t.Fatal(err)
	}
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	raw := inmemory.New()
	tr, reg := newTestRegistryOn(t, gcConfig("keep"), locks, m.Wrap(raw))
	ctx := context.Background()
	layers := [][]byte{[]byte("layer one"), []byte("layer two")}
	_, man := tr.imageManifest("app", layers...)
	tr.expect(tr.do("PUT", "/v2/app/manifests/v1", man, "Content-Type", mtOCIManifest), 201, "")
	var index []string
	for _, k := range tr.keys() {
		if strings.HasPrefix(k, "datarefs/") {
			index = append(index, k)
		}
	}
	if len(index) != 3 { // config and two layers
		t.Fatalf("data index after the push: %v", index)
	}
	if err := raw.DeleteBatch(ctx, index); err != nil { // layout v1
		t.Fatal(err)
	}
	downgradeLinks(t, raw, "app")
	ageOut()
	reads := func(run func()) uint64 {
		before, err := instrument.OpCounts(metrics)
		if err != nil {
			t.Fatal(err)
		}
		run()
		after, err := instrument.OpCounts(metrics)
		if err != nil {
			t.Fatal(err)
		}
		return instrument.Diff(before, after)[instrument.OpRead]
	}
	var first, second *GCReport
	firstReads := reads(func() { first = mustGC(t, reg) })
	secondReads := reads(func() { second = mustGC(t, reg) })
	t.Logf("first pass: %d reads, %+v; second: %d reads", firstReads, *first, secondReads)
	if first.DataIndexed != 3 || first.BlobsDeleted+first.OrphansDeleted != 0 {
		t.Fatalf("first pass over a v1 store: %+v", *first)
	}
	if second.DataIndexed != 0 || firstReads-secondReads != 3 {
		t.Fatalf("second pass: %d indexed, %d reads (first %d); want no record reads", second.DataIndexed, secondReads, firstReads)
	}
	// One tag and one manifest: the mark's reads; the sweep only lists.
	if secondReads != 2 {
		t.Fatalf("second pass made %d reads, want 2 (the tag and the manifest)", secondReads)
	}
	for _, l := range append(layers, []byte(`{"architecture":"amd64","os":"linux"}`)) {
		tr.expect(tr.do("GET", "/v2/app/blobs/"+sha(l), nil), 200, "")
	}
}

func mustGC(t *testing.T, reg *Registry) *GCReport {
	t.Helper()
	rep, err := reg.RunGC(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
