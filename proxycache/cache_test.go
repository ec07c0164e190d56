package proxycache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// fakeUpstream serves one blob at path digest d with the given bytes
// (which may not match d) and counts the GETs.
type fakeUpstream struct {
	d    digest.Digest
	body []byte
	gets atomic.Int64
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2/" {
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/blobs/"+f.d.String()) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.Header().Set("Docker-Content-Digest", f.d.String())
	if r.Method == http.MethodGet {
		f.gets.Add(1)
		w.Write(f.body)
	}
}

type mirrorSetup struct {
	reg      *httptest.Server
	driver   *inmemory.Driver
	cache    *Cache
	upstream *fakeUpstream
	locks    *memory.Store
}

func newMirrorSetup(t *testing.T, up *fakeUpstream) *mirrorSetup {
	t.Helper()
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	driver, locks := inmemory.New(), memory.New()
	cfg := Config{Upstreams: Upstreams{{Prefix: "m", URL: upSrv.URL}}}
	cfg.SetDefaults()
	if err := cfg.Validate("proxy"); err != nil {
		t.Fatal(err)
	}
	cache, err := New(cfg, Deps{Storage: driver, Locking: locks, MaxManifestSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(context.Background(), registry.Config{}, registry.Deps{Storage: driver, Locking: locks, Mirror: cache})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &mirrorSetup{reg: srv, driver: driver, cache: cache, upstream: up, locks: locks}
}

// dataObjects counts stored upload data objects (what a fetch writes).
func (s *mirrorSetup) dataObjects(t *testing.T) int {
	t.Helper()
	page, err := s.driver.List(context.Background(), "data/", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Objects)
}

func TestFetchBlob(t *testing.T) {
	good := []byte(strings.Repeat("layer bytes ", 100000)) // > one copy step
	d := digest.FromBytes(good)
	bad := append([]byte{}, good...)
	bad[len(bad)-1] ^= 1
	for _, tc := range []struct {
		desc     string
		body     []byte
		wantOK   bool
		stored   int
		upstream int64 // GETs after two pulls
	}{
		{desc: "verified blob is stored and then served locally", body: good, wantOK: true, stored: 1, upstream: 1},
		{desc: "wrong bytes: connection cut, nothing stored", body: bad, wantOK: false, stored: 0, upstream: 2},
		{desc: "short body: nothing stored", body: good[:len(good)/2], wantOK: false, stored: 0, upstream: 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := newMirrorSetup(t, &fakeUpstream{d: d, body: tc.body})
			for i := range 2 {
				err := getBlob(s.reg.URL+"/v2/m/app/blobs/"+d.String(), d)
				if tc.wantOK && err != nil {
					t.Fatalf("pull %d: %v", i, err)
				}
				if !tc.wantOK && err == nil {
					t.Fatalf("pull %d of a bad upstream blob completed", i)
				}
			}
			if n := s.dataObjects(t); n != tc.stored {
				t.Fatalf("%d data objects stored, want %d", n, tc.stored)
			}
			if n := s.upstream.gets.Load(); n != tc.upstream {
				t.Fatalf("%d upstream GETs, want %d", n, tc.upstream)
			}
		})
	}
}

// getBlob GETs a blob and checks the full body's digest.
func getBlob(u string, d digest.Digest) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.String() {
		return fmt.Errorf("body digest %s", got)
	}
	return nil
}

func TestMirrorRefusesWrites(t *testing.T) {
	s := newMirrorSetup(t, &fakeUpstream{d: digest.FromString("x")})
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/v2/m/app/blobs/uploads/"},
		{http.MethodPut, "/v2/m/app/manifests/v1"},
		{http.MethodDelete, "/v2/m/app/manifests/v1"},
		{http.MethodDelete, "/v2/m/app/blobs/" + digest.FromString("x").String()},
	} {
		req, _ := http.NewRequest(tc.method, s.reg.URL+tc.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), `"DENIED"`) {
			t.Errorf("%s %s: %d %s, want 403 DENIED", tc.method, tc.path, resp.StatusCode, b)
		}
	}
	// An ordinary repository still takes pushes.
	resp, err := http.Post(s.reg.URL+"/v2/team/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push outside the mirror: %d", resp.StatusCode)
	}
}

func TestUpstreamDownNothingCached(t *testing.T) {
	s := newMirrorSetup(t, &fakeUpstream{d: digest.FromString("x")})
	// Point the upstream at a closed port.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close()
	up, err := newUpstream(Upstream{Prefix: "m", URL: addr, TTL: time.Minute}, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	s.cache.upstreams["m"] = up
	for _, path := range []string{"/v2/m/app/manifests/v1", "/v2/m/app/blobs/" + digest.FromString("y").String()} {
		resp, err := http.Get(s.reg.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "UNAVAILABLE") {
			t.Errorf("GET %s with the upstream down: %d Retry-After=%q %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	var me *registry.MirrorError
	_, err = s.cache.Manifest(context.Background(), "m/app", registry.Reference{Tag: "v1"})
	if !errors.As(err, &me) || me.Code != registry.MirrorUnavailable {
		t.Fatalf("Manifest with the upstream down: %v", err)
	}
}

// TestLeaseWaitBounded: while another replica holds the blob's lease and
// never stores it, a pull waits lease_wait and answers 503 with
// Retry-After, without fetching.
func TestLeaseWaitBounded(t *testing.T) {
	body := []byte("blob")
	d := digest.FromBytes(body)
	s := newMirrorSetup(t, &fakeUpstream{d: d, body: body})
	s.cache.leaseWait, s.cache.pollEvery = 50*time.Millisecond, 10*time.Millisecond
	if _, err := s.locks.Acquire(context.Background(), blobLeaseKey(d), time.Minute); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.reg.URL + "/v2/m/app/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "another request") {
		t.Fatalf("pull behind a held lease: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if n := s.upstream.gets.Load(); n != 0 {
		t.Fatalf("%d upstream GETs while another held the lease", n)
	}
}
