package registry

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// A short grace makes "old" reachable in a test; pin_timeout must stay
// below it, as Validate insists.
const testGrace = 400 * time.Millisecond

func gcConfig(untagged string) Config {
	return Config{
		LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second, PinTimeout: 100 * time.Millisecond,
		GC: GCConfig{Grace: testGrace, Untagged: untagged, UntaggedAge: testGrace},
	}
}

// lockStores are the implementations every GC protocol test runs against.
func lockStores(t *testing.T) map[string]func(t *testing.T) locking.Store {
	return map[string]func(t *testing.T) locking.Store{
		"memory": func(t *testing.T) locking.Store {
			s := memory.New()
			t.Cleanup(func() { s.Close() })
			return s
		},
		"redis": func(t *testing.T) locking.Store {
			srv := lockingtest.StartRedis(t)
			cfg := lockredis.Config{Addrs: []string{srv.Addr()}}
			cfg.SetDefaults()
			s, err := lockredis.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func ageOut() { time.Sleep(testGrace + 150*time.Millisecond) }

func TestGCCollectsGarbageAndKeepsLiveContent(t *testing.T) {
	locks := memory.New()
	defer locks.Close()
	tr, reg := newTestRegistryWith(t, gcConfig("delete"), locks)
	ctx := context.Background()

	shared := []byte("shared layer")
	keepD, keep := tr.imageManifest("app", shared, []byte("kept layer"))
	tr.expect(tr.do("PUT", "/v2/app/manifests/v1", keep, "Content-Type", mtOCIManifest), 201, "")
	dropD, drop := tr.imageManifest("app", shared, []byte("dropped layer"))
	tr.expect(tr.do("PUT", "/v2/app/manifests/v2", drop, "Content-Type", mtOCIManifest), 201, "")
	tr.expect(tr.do("DELETE", "/v2/app/manifests/v2", nil), 202, "") // untag only
	// A signature of the kept image survives with it.
	cfgD := tr.pushBlob("app", []byte("{}"))
	sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","artifactType":"application/x.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],"subject":{"mediaType":"%s","digest":"%s","size":%d}}`,
		mtOCIManifest, cfgD, mtOCIManifest, keepD, len(keep)))
	tr.expect(tr.do("PUT", "/v2/app/manifests/"+sha(sig), sig, "Content-Type", mtOCIManifest), 201, "")
	// A blob nobody references, a repository that only had it, an orphaned
	// data object and an abandoned upload.
	lone := tr.pushBlob("scratch", []byte("lone blob"))
	if _, err := tr.store.Put(ctx, dataKey(newUploadID()), strings.NewReader("orphan"), storage.PutOptions{Size: 6}); err != nil {
		t.Fatal(err)
	}
	r := tr.do("POST", "/v2/app/blobs/uploads/", nil)
	tr.expect(tr.do("PATCH", r.header.Get("Location"), []byte("abandoned")), 202, "")
	reg.cfg.UploadTTL = 0 // let the abandoned upload count as expired
	ageOut()

	before := tr.keys()
	dry, err := reg.RunGC(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if after := tr.keys(); len(after) != len(before)+1 { // + the report
		t.Fatalf("dry run changed the store: %d keys before, %d after", len(before), len(after))
	}
	var deletes []string
	for _, d := range dry.Decisions {
		if d.Action == "delete" {
			deletes = append(deletes, d.Object+": "+d.Reason)
		}
	}
	for _, want := range []string{"manifest app@" + dropD, "blob " + lone, "repository scratch"} {
		if !slices.ContainsFunc(deletes, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("dry run does not explain deleting %s; decisions: %v", want, deletes)
		}
	}

	rep, err := reg.RunGC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", *rep)
	// Live content is whole.
	for _, ref := range []string{"v1", keepD, sha(sig)} {
		tr.expect(tr.do("GET", "/v2/app/manifests/"+ref, nil), 200, "")
	}
	tr.expect(tr.do("GET", "/v2/app/blobs/"+sha(shared), nil), 200, "")
	tr.expect(tr.do("GET", "/v2/app/blobs/"+sha([]byte("kept layer")), nil), 200, "")
	// Garbage is gone.
	tr.expect(tr.do("GET", "/v2/app/manifests/"+dropD, nil), 404, codeManifestUnknown)
	tr.expect(tr.do("GET", "/v2/app/blobs/"+sha([]byte("dropped layer")), nil), 404, codeBlobUnknown)
	tr.expect(tr.do("GET", "/v2/scratch/blobs/"+lone, nil), 404, codeBlobUnknown)
	if rep.ManifestsDeleted != 1 || rep.BlobsDeleted != 2 || rep.OrphansDeleted != 1 || rep.UploadsAborted != 1 || rep.ReposRemoved != 1 {
		t.Fatalf("report counts: %+v", *rep)
	}
	// Every data object has a record, every record a data object.
	records, data := 0, 0
	for _, k := range tr.keys() {
		switch {
		case strings.HasPrefix(k, "blobs/"):
			records++
		case strings.HasPrefix(k, "data/"):
			data++
		case strings.HasPrefix(k, "catalog/scratch"):
			t.Errorf("empty repository still listed: %s", k)
		}
	}
	if records != data || records != 4 { // shared, kept, config, {} config
		t.Fatalf("%d records and %d data objects left, want 4 and 4", records, data)
	}
	last, err := reg.LastGCReport(ctx)
	if err != nil || last.BlobsDeleted != 2 {
		t.Fatalf("last report: %+v, %v", last, err)
	}
}

// gate pauses the side of a race that reaches it first until released.
type gate struct {
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{reached: make(chan struct{}), release: make(chan struct{})} }

// gcHeldAfterClaim starts a GC pass and returns once the pass has claimed
// key; the pass then waits until g.release is closed, and done receives
// its error.
func gcHeldAfterClaim(reg *Registry, key string) (g *gate, done <-chan error) {
	g = newGate()
	reg.hooks = &hooks{afterClaim: func(k string, ok bool) {
		if k == key && ok {
			g.pass()
		}
	}}
	errs := make(chan error, 1)
	go func() { _, err := reg.RunGC(context.Background(), false); errs <- err }()
	<-g.reached
	return g, errs
}

func (g *gate) pass() {
	g.once.Do(func() {
		close(g.reached)
		<-g.release
	})
}

// TestGCPinClaimInterleavings forces each interleaving of design.md §6's
// protocol with hooks and checks the invariant: a request that succeeded
// relies on nothing GC then removes, and a refusal is a clean error.
func TestGCPinClaimInterleavings(t *testing.T) {
	for storeName, newLocks := range lockStores(t) {
		t.Run(storeName, func(t *testing.T) {
			t.Run("head then manifest put across a pass", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				layer := []byte("layer")
				md, m := tr.imageManifest("r", layer)
				ageOut()
				for _, b := range [][]byte{layer, []byte(`{"architecture":"amd64","os":"linux"}`)} {
					tr.expect(tr.do("HEAD", "/v2/r/blobs/"+sha(b), nil), 200, "")
				}
				rep, err := reg.RunGC(context.Background(), false)
				if err != nil {
					t.Fatal(err)
				}
				if rep.BlobsDeleted != 0 || rep.KeptByPin == 0 {
					t.Fatalf("pinned blobs not kept: %+v", *rep)
				}
				tr.expect(tr.do("PUT", "/v2/r/manifests/"+md, m, "Content-Type", mtOCIManifest), 201, "")
				tr.expect(tr.do("GET", "/v2/r/blobs/"+sha(layer), nil), 200, "")
			})
			t.Run("stale head gives a clean manifest error", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				_, m := tr.imageManifest("r", []byte("layer"))
				ageOut()
				if _, err := reg.RunGC(context.Background(), false); err != nil {
					t.Fatal(err)
				}
				tr.expect(tr.do("PUT", "/v2/r/manifests/v1", m, "Content-Type", mtOCIManifest), 400, codeManifestBlobUnknown)
			})
			t.Run("finalize after claim is refused then retried", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				blob := []byte("raced blob")
				d := tr.pushBlob("old", blob)
				ageOut()
				r := tr.do("POST", "/v2/new/blobs/uploads/", nil)
				loc := r.header.Get("Location")
				tr.expect(tr.do("PATCH", loc, blob), 202, "")
				g, done := gcHeldAfterClaim(reg, d)
				tr.expect(tr.do("PUT", loc+"?digest="+d, nil), 503, codeUnavailable)
				close(g.release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				reg.hooks = nil
				tr.expect(tr.do("PUT", loc+"?digest="+d, nil), 201, "")
				tr.expect(tr.do("GET", "/v2/new/blobs/"+d, nil), 200, "")
			})
			t.Run("finalize pin before claim keeps the blob", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				blob := []byte("raced blob 2")
				d := tr.pushBlob("old", blob)
				ageOut()
				r := tr.do("POST", "/v2/new/blobs/uploads/", nil)
				loc := r.header.Get("Location")
				tr.expect(tr.do("PATCH", loc, blob), 202, "")
				g := newGate()
				reg.hooks = &hooks{afterPin: func(key string, err error) {
					if key == d && err == nil {
						g.pass()
					}
				}}
				put := make(chan resp, 1)
				go func() { put <- tr.do("PUT", loc+"?digest="+d, nil) }()
				<-g.reached
				rep, err := reg.RunGC(context.Background(), false)
				if err != nil {
					t.Fatal(err)
				}
				close(g.release)
				tr.expect(<-put, 201, "")
				if rep.KeptByPin == 0 {
					t.Fatalf("claim was not refused: %+v", *rep)
				}
				tr.expect(tr.do("GET", "/v2/new/blobs/"+d, nil), 200, "")
			})
			t.Run("mount after claim falls back to an upload", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				d := tr.pushBlob("src", []byte("mounted blob"))
				ageOut()
				g, done := gcHeldAfterClaim(reg, d)
				tr.expect(tr.do("POST", "/v2/dst/blobs/uploads/?mount="+d+"&from=src", nil), 202, "")
				close(g.release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				tr.expect(tr.do("GET", "/v2/dst/blobs/"+d, nil), 404, codeBlobUnknown)
			})
			t.Run("mount pin before claim keeps the blob", func(t *testing.T) {
				tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				d := tr.pushBlob("src", []byte("mounted blob 2"))
				ageOut()
				g := newGate()
				reg.hooks = &hooks{afterPin: func(key string, err error) {
					if key == d && err == nil {
						g.pass()
					}
				}}
				mount := make(chan resp, 1)
				go func() { mount <- tr.do("POST", "/v2/dst/blobs/uploads/?mount="+d+"&from=src", nil) }()
				<-g.reached
				if _, err := reg.RunGC(context.Background(), false); err != nil {
					t.Fatal(err)
				}
				close(g.release)
				tr.expect(<-mount, 201, "")
				tr.expect(tr.do("GET", "/v2/dst/blobs/"+d, nil), 200, "")
			})
			t.Run("one pass at a time", func(t *testing.T) {
				_, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
				lease, err := reg.locks.Acquire(context.Background(), gcLeaseKey, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				defer reg.locks.Release(context.Background(), lease)
				if _, err := reg.RunGC(context.Background(), false); err != ErrGCRunning {
					t.Fatalf("err = %v, want ErrGCRunning", err)
				}
			})
		})
	}
}

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
