package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// readerGate is a driver that can hold every link read until a data
// object's read has started (proving the two overlap), and that tracks the
// readers it handed out, so a test can tell that none was left open.
type readerGate struct {
	storage.Driver
	hold       atomic.Bool   // link reads wait for a data read
	dataOpened chan struct{} // one token per data read started
	// heldOut counts link reads that waited in vain: the data read did
	// not overlap them.
	heldOut atomic.Int64
	mu      sync.Mutex
	open    int
}

const gateWait = 300 * time.Millisecond

func newReaderGate(d storage.Driver) *readerGate {
	return &readerGate{Driver: d, dataOpened: make(chan struct{}, 64)}
}

func (g *readerGate) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	switch {
	case strings.HasPrefix(key, "data/"):
		select {
		case g.dataOpened <- struct{}{}:
		default:
		}
	case strings.Contains(key, "/_links/") && g.hold.Load():
		select {
		case <-g.dataOpened:
		case <-time.After(gateWait):
			g.heldOut.Add(1)
		}
	}
	rc, err := g.Driver.Reader(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.open++
	g.mu.Unlock()
	return &trackedReader{ReadCloser: rc, g: g}, nil
}

func (g *readerGate) openReaders() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// drain forgets data reads of earlier requests.
func (g *readerGate) drain() {
	for {
		select {
		case <-g.dataOpened:
		default:
			return
		}
	}
}

type trackedReader struct {
	io.ReadCloser
	g    *readerGate
	once sync.Once
}

func (r *trackedReader) Close() error {
	r.once.Do(func() {
		r.g.mu.Lock()
		r.g.open--
		r.g.mu.Unlock()
	})
	return r.ReadCloser.Close()
}

// TestPullOpensDataWhileReadingLink: a GET of a blob this process served
// before opens its data object while it reads the repository's link, and
// serves it only when the link names that object and the pin holds; in
// every other case the early reader is closed unread and the answer is
// what it was without it.
func TestPullOpensDataWhileReadingLink(t *testing.T) {
	blob := []byte("a layer pulled twice")
	for _, tc := range []struct {
		name string
		// between runs after the first pull; it returns the repository
		// and the answer the second pull must get.
		between    func(t *testing.T, tr *testRegistry, reg *Registry, locks *memory.Store) (repo string, status int, code string)
		overlapped bool // the second pull's data read overlapped its link read
		// unpinned is a key the second pull must not have pinned.
		unpinned func(t *testing.T) string
	}{
		{
			name: "served before: data opened with the link",
			between: func(*testing.T, *testRegistry, *Registry, *memory.Store) (string, int, string) {
				return "app", 200, ""
			},
			overlapped: true,
		},
		{
			name: "not linked in this repository",
			between: func(t *testing.T, tr *testRegistry, _ *Registry, _ *memory.Store) (string, int, string) {
				tr.pushBlob("other", []byte("something else"))
				return "other", 404, "BLOB_UNKNOWN"
			},
			overlapped: true,
			unpinned:   func(t *testing.T) string { return content.LinkKey("other", mustDigest(t, sha(blob))) },
		},
		{
			name: "GC is deleting it: the pin is refused",
			between: func(t *testing.T, tr *testRegistry, _ *Registry, locks *memory.Store) (string, int, string) {
				d := mustDigest(t, sha(blob))
				ok, err := locks.Claim(context.Background(), d.String(), time.Now().Add(time.Hour), time.Minute)
				if err != nil || !ok {
					t.Fatalf("claim: %v, %v", ok, err)
				}
				t.Cleanup(func() { locks.Unclaim(context.Background(), d.String()) })
				return "app", 404, "BLOB_UNKNOWN"
			},
			overlapped: true,
		},
		{
			name: "collected and pushed again: a new data object",
			between: func(t *testing.T, tr *testRegistry, reg *Registry, _ *memory.Store) (string, int, string) {
				tr.expect(tr.do("DELETE", "/v2/app/blobs/"+sha(blob), nil), 202, "")
				ageOut()
				if _, err := reg.RunGC(context.Background(), false); err != nil {
					t.Fatal(err)
				}
				if _, err := reg.content.Stat(context.Background(), mustDigest(t, sha(blob))); err == nil {
					t.Fatal("GC kept the unlinked blob")
				}
				tr.pushBlob("app", blob)
				return "app", 200, ""
			},
			// The remembered object is gone: it is opened early, found
			// missing, and the link's object is opened after it.
			overlapped: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			locks := memory.New()
			t.Cleanup(func() { locks.Close() })
			gate := newReaderGate(inmemory.New())
			// Two replicas of one store: tr pushes, puller pulls.
			tr, reg := newTestRegistryOn(t, gcConfig("keep"), locks, gate)
			puller, pullReg := newTestRegistryOn(t, gcConfig("keep"), locks, gate)
			if pullReg.redirects {
				t.Fatal("the in-memory store does not sign URLs; pulls must not count as redirecting")
			}
			tr.pushBlob("app", blob)

			// The pushing replica remembers the data it committed.
			gate.drain()
			gate.hold.Store(true)
			own := tr.do("GET", "/v2/app/blobs/"+sha(blob), nil)
			gate.hold.Store(false)
			tr.expect(own, 200, "")
			if gate.heldOut.Load() != 0 {
				t.Fatal("the pushing replica's pull read the link before opening the data")
			}
			// The other replica's first pull: nothing remembered, so its
			// link read waits out the gate (this is what the gate detects).
			gate.drain()
			gate.hold.Store(true)
			first := puller.do("GET", "/v2/app/blobs/"+sha(blob), nil)
			gate.hold.Store(false)
			puller.expect(first, 200, "")
			if gate.heldOut.Load() == 0 {
				t.Fatal("the first pull's data read overlapped its link read: nothing was remembered yet")
			}

			repo, status, code := tc.between(t, tr, reg, locks)
			gate.drain()
			gate.heldOut.Store(0)
			gate.hold.Store(true)
			sent := time.Now()
			second := puller.do("GET", "/v2/"+repo+"/blobs/"+sha(blob), nil)
			gate.hold.Store(false)
			puller.expect(second, status, code)
			if status == 200 && !bytes.Equal(second.body, blob) {
				t.Fatalf("second pull served %q, want %q", second.body, blob)
			}
			if got := gate.heldOut.Load() == 0; got != tc.overlapped {
				t.Errorf("second pull overlapped data and link reads: %v, want %v", got, tc.overlapped)
			}
			if n := gate.openReaders(); n != 0 {
				t.Errorf("%d store readers left open", n)
			}
			if tc.unpinned != nil {
				// A claim since the request succeeds only if it pinned nothing.
				key := tc.unpinned(t)
				if ok, err := locks.Claim(context.Background(), key, sent, time.Minute); err != nil || !ok {
					t.Errorf("the refused pull pinned %s (claim: %v, %v)", key, ok, err)
				}
			}
		})
	}
}

// A range GET and a HEAD need no early open: the range is read once the
// size is known, and a HEAD reads no data.
func TestRangeAndHeadDoNotOpenEarly(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	gate := newReaderGate(inmemory.New())
	tr, _ := newTestRegistryOn(t, gcConfig("keep"), locks, gate)
	blob := []byte("0123456789")
	tr.pushBlob("app", blob)
	tr.expect(tr.do("GET", "/v2/app/blobs/"+sha(blob), nil), 200, "") // remembered now
	for _, tc := range []struct {
		method string
		header []string
		status int
		body   string
	}{
		{"GET", []string{"Range", "bytes=2-4"}, 206, "234"},
		{"HEAD", nil, 200, ""},
	} {
		gate.drain()
		gate.heldOut.Store(0)
		gate.hold.Store(true)
		r := tr.do(tc.method, "/v2/app/blobs/"+sha(blob), nil, tc.header...)
		gate.hold.Store(false)
		tr.expect(r, tc.status, "")
		if string(r.body) != tc.body {
			t.Errorf("%s %v: body %q, want %q", tc.method, tc.header, r.body, tc.body)
		}
		if gate.heldOut.Load() == 0 {
			t.Errorf("%s %v opened data before reading the link", tc.method, tc.header)
		}
		if n := gate.openReaders(); n != 0 {
			t.Errorf("%s: %d store readers left open", tc.method, n)
		}
	}
}

// Whether pulls redirect is asked of the store once, at start: a store that
// signs URLs redirects whole-blob GETs (and opens nothing early); one that
// does not serves them through the early open. Real MinIO, both ways.
func TestPullsRedirectOnlyWhenTheStoreSigns(t *testing.T) {
	mio := s3test.Start(t)
	for _, tc := range []struct {
		name     string
		redirect bool
		status   int
	}{
		{"redirect off", false, 200},
		{"redirect on", true, 307},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := mio.Config(fmt.Sprintf("redirects-%d", time.Now().UnixNano()))
			cfg.Redirect = tc.redirect
			cfg.SetDefaults()
			drv, err := s3.New(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { drv.Close() })
			locks := memory.New()
			t.Cleanup(func() { locks.Close() })
			tr, reg := newTestRegistryOn(t, gcConfig("keep"), locks, drv)
			if reg.redirects != tc.redirect {
				t.Fatalf("redirects = %v, want %v", reg.redirects, tc.redirect)
			}
			blob := []byte("served or redirected")
			tr.pushBlob("app", blob)
			// A client that does not follow redirects, to see the answer.
			hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := hc.Get(tr.srv.URL + "/v2/app/blobs/" + sha(blob))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("GET: %d, %v", resp.StatusCode, err)
			}
			if tc.status == 200 && !bytes.Equal(body, blob) {
				t.Errorf("body %q, want %q", body, blob)
			}
			if tc.status == 307 && resp.Header.Get("Location") == "" {
				t.Error("a redirect without Location")
			}
		})
	}
}
