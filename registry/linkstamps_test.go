package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// linkReads counts the link reads that reach the store and can run a
// hook once, just before the next link read (before) or link delete
// (beforeDelete).
type linkReads struct {
	storage.Driver
	n            atomic.Int64
	mu           sync.Mutex
	before       func()
	beforeDelete func()
}

func (l *linkReads) Delete(ctx context.Context, key string) error {
	if strings.Contains(key, "/_links/") {
		l.mu.Lock()
		hook := l.beforeDelete
		l.beforeDelete = nil
		l.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	return l.Driver.Delete(ctx, key)
}

func (l *linkReads) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if strings.Contains(key, "/_links/") {
		l.n.Add(1)
		l.mu.Lock()
		hook := l.before
		l.before = nil
		l.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	return l.Driver.Reader(ctx, key, offset, length)
}

// replicas is two registries on one store and one lock store: pusher
// writes, puller pulls.
type replicas struct {
	locks          locking.Store
	store          *linkReads
	pusher, puller *testRegistry
	pusherReg      *Registry
}

func newReplicas(t *testing.T, locks locking.Store) *replicas {
	t.Helper()
	store := &linkReads{Driver: inmemory.New()}
	pusher, pusherReg := newTestRegistryOn(t, gcConfig("keep"), locks, store)
	puller, _ := newTestRegistryOn(t, gcConfig("keep"), locks, store)
	return &replicas{locks: locks, store: store, pusher: pusher, puller: puller, pusherReg: pusherReg}
}

// pull GETs blob from repo on the puller and returns the link reads it
// made.
func (rs *replicas) pull(t *testing.T, repo string, blob []byte, status int, code string) int64 {
	t.Helper()
	before := rs.store.n.Load()
	r := rs.puller.do("GET", "/v2/"+repo+"/blobs/"+sha(blob), nil)
	rs.puller.expect(r, status, code)
	if status == 200 && !bytes.Equal(r.body, blob) {
		t.Fatalf("pull served %q, want %q", r.body, blob)
	}
	return rs.store.n.Load() - before
}

// markChanging puts repo's link stamp in the state a link deletion on
// another replica leaves it in before it deletes.
func markChanging(t *testing.T, locks locking.Store, repo string) {
	t.Helper()
	ctx := context.Background()
	id := content.LinkStampID(repo)
	if err := locks.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := locks.Create(ctx, id, []byte("Dchanging"), time.Minute); err != nil {
		t.Fatal(err)
	}
}

// rememberedCase is one case of TestRememberedLinks.
type rememberedCase struct {
	name string
	// between runs once the puller has served the blob (and so
	// remembers its link).
	between    func(t *testing.T, rs *replicas)
	status     int
	code       string
	linkReads  int64 // of the next pull
	thenReads  int64 // of the pull after that
	thenStatus int
}

// TestRememberedLinks: a replica that served a blob remembers the link and
// pulls it again without reading the link, until a deletion of a link of
// the repository on any replica (a DELETE, or GC) or the loss of the
// repository's stamp makes it read the link again.
func TestRememberedLinks(t *testing.T) {
	blob := []byte("a layer two replicas serve")
	d := func(t *testing.T) string { return sha(blob) }
	for _, tc := range []rememberedCase{
		{
			name:       "remembered: no link read",
			between:    func(*testing.T, *replicas) {},
			status:     200,
			linkReads:  0,
			thenReads:  0,
			thenStatus: 200,
		},
		{
			name: "unlinked by a DELETE on the other replica",
			between: func(t *testing.T, rs *replicas) {
				rs.pusher.expect(rs.pusher.do("DELETE", "/v2/app/blobs/"+d(t), nil), 202, "")
			},
			status: 404, code: "BLOB_UNKNOWN", linkReads: 1,
			thenReads: 1, thenStatus: 404,
		},
		{
			name: "unlinked by GC on the other replica",
			between: func(t *testing.T, rs *replicas) {
				repo, err := rs.pusherReg.content.Repository("app")
				if err != nil {
					t.Fatal(err)
				}
				if err := rs.pusherReg.content.Delete(context.Background(), []content.Target{repo.LinkTarget(mustDigest(t, d(t)))}); err != nil {
					t.Fatal(err)
				}
			},
			status: 404, code: "BLOB_UNKNOWN", linkReads: 1,
			thenReads: 1, thenStatus: 404,
		},
		{
			name: "stamp lost: the lock store restarted",
			between: func(t *testing.T, rs *replicas) {
				if err := rs.locks.Delete(context.Background(), content.LinkStampID("app")); err != nil {
					t.Fatal(err)
				}
			},
			// This pull finds no stamp and creates one; the next
			// remembers under it.
			status: 200, linkReads: 1,
			thenReads: 1, thenStatus: 200,
		},
		{
			name:    "a link deletion is under way",
			between: func(t *testing.T, rs *replicas) { markChanging(t, rs.locks, "app") },
			status:  200, linkReads: 1,
			thenReads: 1, thenStatus: 200,
		},
	} {
		for lsName, newLocks := range lockStores(t) {
			t.Run(lsName+"/"+tc.name, func(t *testing.T) {
				rememberedLinkCase(t, newReplicas(t, newLocks(t)), blob, tc)
			})
		}
	}
}

// rememberedLinkCase is one case of TestRememberedLinks.
func rememberedLinkCase(t *testing.T, rs *replicas, blob []byte, tc rememberedCase) {
	rs.pusher.pushBlob("app", blob)
	if n := rs.pull(t, "app", blob, 200, ""); n != 1 {
		t.Fatalf("first pull on the puller read %d links, want 1", n)
	}
	if n := rs.pull(t, "app", blob, 200, ""); n != 0 {
		t.Fatalf("second pull on the puller read %d links, want 0 (remembered)", n)
	}
	tc.between(t, rs)
	if n := rs.pull(t, "app", blob, tc.status, tc.code); n != tc.linkReads {
		t.Errorf("pull read %d links, want %d", n, tc.linkReads)
	}
	if n := rs.pull(t, "app", blob, tc.thenStatus, ""); n != tc.thenReads {
		t.Errorf("the pull after read %d links, want %d", n, tc.thenReads)
	}
}

// TestLinkDeletedWhileBeingRemembered is the interleaving the stamp
// exists for: the puller reads the stamp, another replica begins deleting
// the link, the puller reads the link (still there) and serves it, and
// then the delete lands. The puller must not serve the link again from
// memory.
func TestLinkDeletedWhileBeingRemembered(t *testing.T) {
	for name, newLocks := range lockStores(t) {
		t.Run(name, func(t *testing.T) { linkDeletedWhileBeingRemembered(t, newReplicas(t, newLocks(t))) })
	}
}

func linkDeletedWhileBeingRemembered(t *testing.T, rs *replicas) {
	blob := []byte("a layer deleted mid-pull")
	rs.pusher.pushBlob("app", blob)
	rs.store.mu.Lock()
	rs.store.before = func() { markChanging(t, rs.locks, "app") }
	rs.store.mu.Unlock()
	if n := rs.pull(t, "app", blob, 200, ""); n != 1 {
		t.Fatalf("first pull read %d links, want 1", n)
	}
	// The deletion lands after the puller read the link.
	key := linkKey("app", mustDigest(t, sha(blob)))
	if err := rs.store.Driver.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if n := rs.pull(t, "app", blob, 404, "BLOB_UNKNOWN"); n != 1 {
		t.Errorf("pull after the delete read %d links, want 1", n)
	}
}

// TestLinkStampLostDuringDeletion: the lock store loses the changing
// stamp while a DELETE is under way, and the puller creates a live one and
// remembers the link under it before the delete lands. The stamp the
// deletion replaces once more afterwards makes the puller read the link
// again.
func TestLinkStampLostDuringDeletion(t *testing.T) {
	for name, newLocks := range lockStores(t) {
		t.Run(name, func(t *testing.T) { linkStampLostDuringDeletion(t, newReplicas(t, newLocks(t))) })
	}
}

func linkStampLostDuringDeletion(t *testing.T, rs *replicas) {
	blob := []byte("a layer whose stamp is lost")
	rs.pusher.pushBlob("app", blob)
	rs.store.mu.Lock()
	rs.store.beforeDelete = func() {
		if err := rs.locks.Delete(context.Background(), content.LinkStampID("app")); err != nil {
			t.Error(err)
		}
		rs.pull(t, "app", blob, 200, "") // finds no stamp and creates one
		rs.pull(t, "app", blob, 200, "") // remembers under it
		if n := rs.pull(t, "app", blob, 200, ""); n != 0 {
			t.Errorf("the link was not remembered under the new stamp (%d link reads)", n)
		}
	}
	rs.store.mu.Unlock()
	rs.pusher.expect(rs.pusher.do("DELETE", "/v2/app/blobs/"+sha(blob), nil), 202, "")
	if n := rs.pull(t, "app", blob, 404, "BLOB_UNKNOWN"); n != 1 {
		t.Errorf("pull after the delete read %d links, want 1", n)
	}
}

// TestProbesLeaveNoLinkStamp: pulls of unknown repositories and digests
// create no lock-store state (goal: failed anonymous requests leave
// nothing behind).
func TestProbesLeaveNoLinkStamp(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	rs := newReplicas(t, locks)
	for _, repo := range []string{"nosuch", "app"} {
		rs.pull(t, repo, []byte("never pushed"), 404, "BLOB_UNKNOWN")
		_, err := rs.locks.Get(context.Background(), content.LinkStampID(repo))
		if !errors.Is(err, locking.ErrNotFound) {
			t.Errorf("%s: a probe left a link stamp (get: %v)", repo, err)
		}
	}
}
