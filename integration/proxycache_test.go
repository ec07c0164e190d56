package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

// countingProxy sits in front of an upstream registry and counts what the
// mirror asks it, by method and kind ("HEAD manifest", "GET blob <digest>").
type countingProxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) count(r *http.Request) {
	key := r.Method
	switch path := r.URL.Path; {
	case strings.Contains(path, "/manifests/"):
		key += " manifest"
	case strings.Contains(path, "/blobs/"):
		key += " blob " + path[strings.LastIndex(path, "/")+1:]
	default:
		key += " other"
	}
	p.mu.Lock()
	p.counts[key]++
	p.mu.Unlock()
}

func (p *countingProxy) get(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[key]
}

func (p *countingProxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

func (p *countingProxy) host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// upstreamsEnv sets proxy.upstreams to prefixes mapped to proxies (an
// environment variable: --set splits its value at commas); the upstream of
// prefix root, if any, also serves unprefixed names.
func upstreamsEnv(ttl time.Duration, ups map[string]*countingProxy, root string) string {
	var items []string
	for prefix, p := range ups {
		items = append(items, fmt.Sprintf(`{prefix: %s, url: %q, ttl: %s, root: %t}`, prefix, p.srv.URL, ttl, prefix == root))
	}
	return "STRATUS_PROXY_UPSTREAMS=[" + strings.Join(items, ", ") + "]"
}

func manifestDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rawGet GETs a mirror path and returns status, headers and body.
func rawGet(t *testing.T, method, u string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("not an OCI error body: %s", body)
	}
	return e.Errors[0].Code
}

// TestProxyCacheTwoUpstreams: two prefixes mirror two registries; pulls
// come through byte for byte (ggcr and crane), survive the upstream going
// away, ?ns= routes to a configured upstream only, and pushes are refused.
func TestProxyCacheTwoUpstreams(t *testing.T) {
	up1, up2 := newServer(t), newServer(t)
	p1, p2 := newCountingProxy(t, up1.URL()), newCountingProxy(t, up2.URL())
	img1 := pushRandomImage(t, ref(t, up1, "team/app:v1"), 4096, 3)
	img2 := pushRandomImage(t, ref(t, up2, "tool:v1"), 4096, 2)
	mirror := startServer(t, []string{"--root", t.TempDir()},
		upstreamsEnv(time.Second, map[string]*countingProxy{"one": p1, "two": p2}, "one"))

	got1, err := remote.Image(ref(t, mirror, "one/team/app:v1"))
	if err != nil {
		t.Fatalf("pull through mirror one: %v", err)
	}
	layersEqual(t, img1, got1)
	got2, err := remote.Image(ref(t, mirror, "two/tool:v1"))
	if err != nil {
		t.Fatalf("pull through mirror two: %v", err)
	}
	layersEqual(t, img2, got2)
	if manifestDigest(t, got1) != manifestDigest(t, img1) {
		t.Fatal("manifest digest changed through the mirror")
	}

	t.Run("root: unprefixed names, as docker registry-mirrors sends them", func(t *testing.T) {
		got, err := remote.Image(ref(t, mirror, "team/app:v1"))
		if err != nil {
			t.Fatalf("pull at the root: %v", err)
		}
		if manifestDigest(t, got) != manifestDigest(t, img1) {
			t.Fatal("the root pull is not the root upstream's image")
		}
		layersEqual(t, img1, got)
	})

	t.Run("crane byte for byte", func(t *testing.T) {
		want := run(t, nil, "crane", "manifest", "--insecure", up1.Addr+"/team/app:v1")
		if got := run(t, nil, "crane", "manifest", "--insecure", mirror.Addr+"/one/team/app:v1"); got != want {
			t.Fatalf("crane manifest differs:\n%s\n%s", got, want)
		}
		layers, _ := img1.Layers()
		d, _ := layers[0].Digest()
		blob := run(t, nil, "crane", "blob", "--insecure", mirror.Addr+"/one/team/app@"+d.String())
		sum := sha256.Sum256([]byte(blob))
		if "sha256:"+hex.EncodeToString(sum[:]) != d.String() {
			t.Fatalf("crane blob through the mirror has another digest than %s", d)
		}
	})

	t.Run("push refused", func(t *testing.T) {
		for _, path := range []string{"/v2/one/team/app/blobs/uploads/", "/v2/two/new/blobs/uploads/", "/v2/rootname/blobs/uploads/"} {
			resp, err := http.Post(mirror.URL()+path, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || errorCode(t, b) != "DENIED" || !strings.Contains(string(b), "pull-through mirror") {
				t.Fatalf("POST %s: %d %s, want 403 DENIED", path, resp.StatusCode, b)
			}
		}
		req, _ := http.NewRequest(http.MethodDelete, mirror.URL()+"/v2/one/team/app/manifests/v1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("DELETE in a mirror: %d, want 403", resp.StatusCode)
		}
	})

	t.Run("ns routing", func(t *testing.T) {
		// containerd sends the upstream's name as ?ns= and the repository
		// without the prefix.
		st, h, _ := rawGet(t, http.MethodGet, mirror.URL()+"/v2/tool/manifests/v1?ns="+p2.host())
		if st != http.StatusOK || h.Get("Docker-Content-Digest") != manifestDigest(t, img2).String() {
			t.Fatalf("ns=%s: %d %s", p2.host(), st, h.Get("Docker-Content-Digest"))
		}
		// An ns that is a live address but not a configured upstream is
		// refused and never dialled.
		var hits atomic.Int64
		canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
		defer canary.Close()
		before1, before2 := p1.total(), p2.total()
		host := strings.TrimPrefix(canary.URL, "http://")
		st, _, b := rawGet(t, http.MethodGet, mirror.URL()+"/v2/tool/manifests/v1?ns="+host)
		if st != http.StatusNotFound || errorCode(t, b) != "NAME_UNKNOWN" {
			t.Fatalf("unknown ns: %d %s, want 404 NAME_UNKNOWN", st, b)
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("the unknown ns was dialled %d times", n)
		}
		if p1.total() != before1 || p2.total() != before2 {
			t.Fatal("a request with an unknown ns reached an upstream")
		}
	})

	t.Run("upstream down serves the cache", func(t *testing.T) {
		up1.Stop()
		time.Sleep(1100 * time.Millisecond) // past the 1s TTL: the tag is re-checked
		again, err := remote.Image(ref(t, mirror, "one/team/app:v1"))
		if err != nil {
			t.Fatalf("pull from the cache with the upstream down: %v", err)
		}
		layersEqual(t, img1, again)
		if !strings.Contains(mirror.Log(), "upstream unavailable; serving the cached tag") {
			t.Fatal("the log does not say the cached tag was served with the upstream down")
		}
		st, h, b := rawGet(t, http.MethodGet, mirror.URL()+"/v2/one/team/other/manifests/v1")
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || errorCode(t, b) != "UNAVAILABLE" {
			t.Fatalf("uncached pull with the upstream down: %d Retry-After=%q %s, want 503 with Retry-After", st, h.Get("Retry-After"), b)
		}
	})
}

// TestProxyCacheTagTTL: an unchanged tag past its TTL costs one HEAD
// upstream; a changed one is fetched (by digest) only after the TTL.
func TestProxyCacheTagTTL(t *testing.T) {
	up := newServer(t)
	p := newCountingProxy(t, up.URL())
	imgA := pushRandomImage(t, ref(t, up, "app:latest"), 1024, 1)
	const ttl = 2 * time.Second
	mirror := startServer(t, []string{"--root", t.TempDir()}, upstreamsEnv(ttl, map[string]*countingProxy{"m": p}, ""))
	pullDigest := func() v1.Hash {
		t.Helper()
		img, err := remote.Image(ref(t, mirror, "m/app:latest"))
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		return manifestDigest(t, img)
	}
	if pullDigest() != manifestDigest(t, imgA) {
		t.Fatal("first pull: wrong digest")
	}
	heads, gets := p.get("HEAD manifest"), p.get("GET manifest")
	if gets != 1 {
		t.Fatalf("first pull: %d upstream manifest GETs, want 1", gets)
	}
	pullDigest() // within the TTL: nothing upstream
	if p.get("HEAD manifest") != heads || p.get("GET manifest") != gets {
		t.Fatalf("a pull within the TTL went upstream: %v", p.counts)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	if pullDigest() != manifestDigest(t, imgA) {
		t.Fatal("unchanged tag: wrong digest")
	}
	if h, g := p.get("HEAD manifest")-heads, p.get("GET manifest")-gets; h != 1 || g != 0 {
		t.Fatalf("unchanged tag past its TTL: %d HEADs and %d GETs upstream, want 1 and 0", h, g)
	}
	heads, gets = p.get("HEAD manifest"), p.get("GET manifest")

	imgB := pushRandomImage(t, ref(t, up, "app:latest"), 1024, 1)
	if pullDigest() != manifestDigest(t, imgA) {
		t.Fatal("the changed tag was picked up before its TTL ran out")
	}
	time.Sleep(ttl + 200*time.Millisecond)
	if pullDigest() != manifestDigest(t, imgB) {
		t.Fatal("the changed tag was not picked up after its TTL")
	}
	if h, g := p.get("HEAD manifest")-heads, p.get("GET manifest")-gets; h != 1 || g != 1 {
		t.Fatalf("changed tag: %d HEADs and %d GETs upstream, want 1 and 1", h, g)
	}
}

// TestProxyCacheOneFetchPerBlob: concurrent pulls of one 64 MiB blob
// through two replicas (shared Redis and store) fetch it upstream once.
func TestProxyCacheOneFetchPerBlob(t *testing.T) {
	up := newServer(t)
	p := newCountingProxy(t, up.URL())
	img := pushRandomImage(t, ref(t, up, "big:v1"), 64<<20, 1)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	args := []string{"--root", t.TempDir(), "--set", "redis.addrs=" + redis.Addr(), "--set", "proxy.lease_wait=5m"}
	env := upstreamsEnv(time.Hour, map[string]*countingProxy{"m": p}, "")
	replicas := []*server{startServer(t, args, env), startServer(t, args, env)}

	const pulls = 6
	errs := make(chan error, pulls)
	for i := range pulls {
		go func() {
			errs <- pullBlob(replicas[i%2].URL()+"/v2/m/big/blobs/"+d.String(), d.String())
		}()
	}
	for range pulls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := p.get("GET blob " + d.String()); n != 1 {
		t.Fatalf("%d upstream GETs of the blob for %d concurrent pulls on 2 replicas, want 1", n, pulls)
	}
}

// pullBlob GETs a blob and checks its digest.
func pullBlob(u, want string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("GET %s: body has digest %s", u, got)
	}
	return nil
}
