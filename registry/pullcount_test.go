package registry

import (
	"context"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/instrument"
)

// TestPullRequestCounts counts the object-store requests and lock-store
// calls of each request of a pull (docs/benchmarks.md, "Requests per
// pull"), on a store written by this version (v2 links) and on one written
// by an earlier version (v1 links: the digest only), which must keep
// working at one more read. The pulls go to a second registry on the same
// storage and lock store (another replica, or a restarted process), which
// remembers nothing until it has served a blob once.
func TestPullRequestCounts(t *testing.T) {
	for _, layout := range []string{"v2", "v1"} {
		t.Run(layout, func(t *testing.T) {
			metrics := prometheus.NewRegistry()
			m, err := instrument.NewMetrics(metrics)
			if err != nil {
				t.Fatal(err)
			}
			locks := &countingPins{Store: memory.New()}
			t.Cleanup(func() { locks.Close() })
			raw := inmemory.New()
			pusher, _ := newTestRegistryOn(t, gcConfig("keep"), locks, m.Wrap(raw))
			layer := []byte("a layer of the pulled image")
			md, man := pusher.imageManifest("app", layer)
			pusher.expect(pusher.do("PUT", "/v2/app/manifests/v1", man, "Content-Type", mtOCIManifest), 201, "")
			cfgD := sha([]byte(`{"architecture":"amd64","os":"linux"}`))
			if layout == "v1" {
				downgradeLinks(t, raw, "app")
			}
			tr, _ := newTestRegistryOn(t, gcConfig("keep"), locks, m.Wrap(raw))
			extra := uint64(0) // v1: the record read the link no longer saves
			if layout == "v1" {
				extra = 1
			}
			for _, tc := range []struct {
				name, method, path string
				status             int
				want               map[string]uint64
				// Lock-store calls: a GET reads the repository's link
				// stamp and pins the link and the digest in one PinAll;
				// from a remembered link it does both at once.
				lockCalls int64
			}{
				{"manifest GET by tag", "GET", "/v2/app/manifests/v1", 200, map[string]uint64{instrument.OpRead: 2}, 0},
				{"manifest GET by digest", "GET", "/v2/app/manifests/" + md, 200, map[string]uint64{instrument.OpRead: 1}, 0},
				{"config blob GET", "GET", "/v2/app/blobs/" + cfgD, 200, map[string]uint64{instrument.OpRead: 2 + extra}, 2},
				{"layer GET", "GET", "/v2/app/blobs/" + sha(layer), 200, map[string]uint64{instrument.OpRead: 2 + extra}, 2},
				{"layer GET again (link remembered)", "GET", "/v2/app/blobs/" + sha(layer), 200, map[string]uint64{instrument.OpRead: 1}, 2},
				{"blob HEAD", "HEAD", "/v2/app/blobs/" + sha(layer), 200, map[string]uint64{instrument.OpRead: 1 + extra}, 1},
				{"unknown blob HEAD", "HEAD", "/v2/app/blobs/" + sha([]byte("nothing")), 404, map[string]uint64{instrument.OpRead: 1}, 0},
				{"unknown blob GET", "GET", "/v2/app/blobs/" + sha([]byte("nothing")), 404, map[string]uint64{instrument.OpRead: 1}, 1},
			} {
				before, err := instrument.OpCounts(metrics)
				if err != nil {
					t.Fatal(err)
				}
				callsBefore := locks.calls.Load()
				tr.expect(tr.do(tc.method, tc.path, nil), tc.status, "")
				after, err := instrument.OpCounts(metrics)
				if err != nil {
					t.Fatal(err)
				}
				got, calls := instrument.Diff(before, after), locks.calls.Load()-callsBefore
				t.Logf("%s %s: store %v, lock store %d", layout, tc.name, got, calls)
				if !maps.Equal(got, tc.want) {
					t.Errorf("%s: store requests %v, want %v", tc.name, got, tc.want)
				}
				if calls != tc.lockCalls {
					t.Errorf("%s: %d lock-store calls, want %d", tc.name, calls, tc.lockCalls)
				}
			}
		})
	}
}

// downgradeLinks rewrites every link of repo in the v1 form (the digest
// only), as a registry before the v2 layout wrote them.
func downgradeLinks(t *testing.T, store storage.Driver, repo string) {
	t.Helper()
	ctx := context.Background()
	any := linkKey(repo, mustDigest(t, sha([]byte("x"))))
	prefix := any[:strings.Index(any, "_links/")+len("_links/")]
	page, err := store.List(ctx, prefix, "", 0)
	if err != nil || page.More {
		t.Fatalf("list links: %v (more: %v)", err, page.More)
	}
	for _, o := range page.Objects {
		d := "sha256:" + o.Key[strings.LastIndex(o.Key, "/")+1:]
		if _, err := store.Put(ctx, o.Key, strings.NewReader(d), storage.PutOptions{Size: int64(len(d))}); err != nil {
			t.Fatal(err)
		}
	}
	if len(page.Objects) == 0 {
		t.Fatal("no links to downgrade")
	}
}

// countingPins counts the pin calls and record reads and creations that
// reach the lock store (each is one round trip to Redis).
type countingPins struct {
	locking.Store
	calls atomic.Int64
}

func (c *countingPins) Pin(ctx context.Context, key string) error {
	c.calls.Add(1)
	return c.Store.Pin(ctx, key)
}

func (c *countingPins) PinAll(ctx context.Context, keys ...string) error {
	c.calls.Add(1)
	return c.Store.PinAll(ctx, keys...)
}

func (c *countingPins) Get(ctx context.Context, id string) ([]byte, error) {
	c.calls.Add(1)
	return c.Store.Get(ctx, id)
}

func (c *countingPins) Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error {
	c.calls.Add(1)
	return c.Store.Create(ctx, id, rec, ttl)
}
