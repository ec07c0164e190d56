package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

type testRegistry struct {
	t     *testing.T
	srv   *httptest.Server
	store storage.Driver
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	tr, _ := newTestRegistryWith(t, Config{LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second}, locks)
	return tr
}

func newTestRegistryWith(t *testing.T, cfg Config, locks locking.Store) (*testRegistry, *Registry) {
	t.Helper()
	return newTestRegistryOn(t, cfg, locks, inmemory.New())
}

func newTestRegistryOn(t *testing.T, cfg Config, locks locking.Store, store storage.Driver) (*testRegistry, *Registry) {
	t.Helper()
	reg, err := New(context.Background(), cfg, Deps{Storage: store, Locking: locks})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	return &testRegistry{t: t, srv: srv, store: store}, reg
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) code() string {
	var eb errorBody
	if json.Unmarshal(r.body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

// do sends a request with a raw (unnormalised) path, as a hostile client would.
func (tr *testRegistry) do(method, path string, body []byte, headers ...string) resp {
	tr.t.Helper()
	return tr.send(method, path, body, false, headers...)
}

func (tr *testRegistry) send(method, path string, body []byte, chunked bool, headers ...string) resp {
	tr.t.Helper()
	req, err := http.NewRequest(method, tr.srv.URL+"/", bytes.NewReader(body))
	if err != nil {
		tr.t.Fatal(err)
	}
	rawPath, rawQuery, _ := strings.Cut(path, "?")
	req.URL.Opaque = rawPath
	req.URL.RawQuery = rawQuery
	switch {
	case body == nil:
		req.Body = http.NoBody
		req.ContentLength = 0
	case chunked:
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = -1
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := tr.srv.Client().Do(req)
	if err != nil {
		tr.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tr.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (tr *testRegistry) expect(r resp, status int, code string) {
	tr.t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		tr.t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
}

// keys lists everything in the store, page by page.
func (tr *testRegistry) keys() []string {
	tr.t.Helper()
	var out []string
	after := ""
	for {
		p, err := tr.store.List(context.Background(), "", after, 100)
		if err != nil {
			tr.t.Fatal(err)
		}
		for _, o := range p.Objects {
			out = append(out, o.Key)
		}
		if !p.More || len(p.Objects) == 0 {
			return out
		}
		after = p.Objects[len(p.Objects)-1].Key
	}
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (tr *testRegistry) pushBlob(repo string, b []byte) string {
	tr.t.Helper()
	d := sha(b)
	tr.expect(tr.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d, b), 201, "")
	return d
}

func (tr *testRegistry) imageManifest(repo string, layers ...[]byte) (string, []byte) {
	tr.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := tr.pushBlob(repo, cfg)
	var ls []string
	for _, l := range layers {
		ld := tr.pushBlob(repo, l)
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, ld, len(l)))
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}`,
		mtOCIManifest, cd, len(cfg), strings.Join(ls, ",")))
	return sha(m), m
}

func TestUploadFlows(t *testing.T) {
	tr := newTestRegistry(t)
	blob := randomBytes(100_000)
	d := sha(blob)

	// Chunked: POST, several PATCHes, PUT with the digest.
	r := tr.do("POST", "/v2/a/blobs/uploads/", nil)
	tr.expect(r, 202, "")
	loc := r.header.Get("Location")
	if r.header.Get("Range") != "0-0" || r.header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("POST headers: %v", r.header)
	}
	for off := 0; off < len(blob); off += 30_000 {
		end := min(off+30_000, len(blob))
		r = tr.do("PATCH", loc, blob[off:end], "Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		tr.expect(r, 202, "")
		if got := r.header.Get("Range"); got != fmt.Sprintf("0-%d", end-1) {
			t.Fatalf("Range after PATCH = %q", got)
		}
	}
	// An out-of-order chunk is refused with the current range.
	r = tr.do("PATCH", loc, blob[:10], "Content-Range", "0-9")
	tr.expect(r, 416, codeBlobUploadInvalid)
	if r.header.Get("Range") != fmt.Sprintf("0-%d", len(blob)-1) {
		t.Fatalf("416 Range = %q", r.header.Get("Range"))
	}
	r = tr.do("GET", loc, nil)
	tr.expect(r, 204, "")
	r = tr.do("PUT", loc+"?digest="+d, nil)
	tr.expect(r, 201, "")
	if r.header.Get("Docker-Content-Digest") != d || r.header.Get("Location") != "/v2/a/blobs/"+d {
		t.Fatalf("PUT headers: %v", r.header)
	}
	tr.expect(tr.do("GET", loc, nil), 404, codeBlobUploadUnknown)

	// Reads: whole, HEAD, ranges.
	r = tr.do("GET", "/v2/a/blobs/"+d, nil)
	tr.expect(r, 200, "")
	if !bytes.Equal(r.body, blob) {
		t.Fatal("blob content differs")
	}
	r = tr.do("HEAD", "/v2/a/blobs/"+d, nil)
	if r.status != 200 || r.header.Get("Content-Length") != "100000" || r.header.Get("Docker-Content-Digest") != d {
		t.Fatalf("HEAD: %d %v", r.status, r.header)
	}
	r = tr.do("GET", "/v2/a/blobs/"+d, nil, "Range", "bytes=10-19")
	if r.status != 206 || !bytes.Equal(r.body, blob[10:20]) || r.header.Get("Content-Range") != "bytes 10-19/100000" {
		t.Fatalf("range: %d %v", r.status, r.header)
	}
	r = tr.do("GET", "/v2/a/blobs/"+d, nil, "Range", "bytes=200000-")
	tr.expect(r, 416, codeRangeInvalid)
	if r.header.Get("Content-Range") != "bytes */100000" {
		t.Fatalf("416 Content-Range = %q", r.header.Get("Content-Range"))
	}

	// POST then PUT with the whole body; sha512 announced and not announced.
	for _, announce := range []bool{true, false} {
		b := randomBytes(5000)
		d512 := fmt.Sprintf("sha512:%x", sha512.Sum512(b))
		path := "/v2/a/blobs/uploads/"
		if announce {
			path += "?digest-algorithm=sha512"
		}
		r = tr.do("POST", path, nil)
		tr.expect(r, 202, "")
		loc := r.header.Get("Location")
		tr.expect(tr.do("PATCH", loc, b[:100], "Content-Range", "0-99"), 202, "")
		tr.expect(tr.do("PUT", loc+"?digest="+d512, b[100:], "Content-Range", "100-4999"), 201, "")
		r = tr.do("GET", "/v2/a/blobs/"+d512, nil)
		if r.status != 200 || !bytes.Equal(r.body, b) {
			t.Fatalf("sha512 announce=%v: %d", announce, r.status)
		}
	}

	// Empty blob.
	empty := sha(nil)
	r = tr.do("POST", "/v2/a/blobs/uploads/", nil)
	tr.expect(tr.do("PUT", r.header.Get("Location")+"?digest="+empty, nil), 201, "")
	tr.expect(tr.do("HEAD", "/v2/a/blobs/"+empty, nil), 200, "")

	// Cancel.
	r = tr.do("POST", "/v2/a/blobs/uploads/", nil)
	loc = r.header.Get("Location")
	tr.expect(tr.do("PATCH", loc, []byte("abc")), 202, "")
	tr.expect(tr.do("DELETE", loc, nil), 204, "")
	tr.expect(tr.do("GET", loc, nil), 404, codeBlobUploadUnknown)
	tr.expect(tr.do("PATCH", loc, []byte("abc")), 404, codeBlobUploadUnknown)
}

func TestMountAndIsolation(t *testing.T) {
	tr := newTestRegistry(t)
	blob := randomBytes(1000)
	d := tr.pushBlob("src", blob)
	// Another repository cannot read it.
	tr.expect(tr.do("GET", "/v2/dst/blobs/"+d, nil), 404, codeBlobUnknown)
	tr.expect(tr.do("HEAD", "/v2/dst/blobs/"+d, nil), 404, "")
	// Mount without from, or from a repository without it: a new session.
	tr.expect(tr.do("POST", "/v2/dst/blobs/uploads/?mount="+d, nil), 202, "")
	tr.expect(tr.do("POST", "/v2/dst/blobs/uploads/?mount="+d+"&from=other", nil), 202, "")
	tr.expect(tr.do("GET", "/v2/dst/blobs/"+d, nil), 404, codeBlobUnknown)
	// Mount from the source.
	r := tr.do("POST", "/v2/dst/blobs/uploads/?mount="+d+"&from=src", nil)
	tr.expect(r, 201, "")
	if r.header.Get("Location") != "/v2/dst/blobs/"+d {
		t.Fatalf("mount Location = %q", r.header.Get("Location"))
	}
	tr.expect(tr.do("GET", "/v2/dst/blobs/"+d, nil), 200, "")
	// Deleting the blob in one repository leaves the other.
	tr.expect(tr.do("DELETE", "/v2/src/blobs/"+d, nil), 202, "")
	tr.expect(tr.do("GET", "/v2/src/blobs/"+d, nil), 404, codeBlobUnknown)
	tr.expect(tr.do("GET", "/v2/dst/blobs/"+d, nil), 200, "")
	tr.expect(tr.do("DELETE", "/v2/src/blobs/"+d, nil), 404, codeBlobUnknown)
}

func TestManifestsTagsReferrers(t *testing.T) {
	tr := newTestRegistry(t)
	md, m := tr.imageManifest("repo", []byte("layer one"), []byte("layer two"))
	r := tr.do("PUT", "/v2/repo/manifests/v1", m, "Content-Type", mtOCIManifest)
	tr.expect(r, 201, "")
	if r.header.Get("Docker-Content-Digest") != md {
		t.Fatalf("digest header %q, want %s", r.header.Get("Docker-Content-Digest"), md)
	}
	for _, ref := range []string{"v1", md} {
		r = tr.do("GET", "/v2/repo/manifests/"+ref, nil, "Accept", mtOCIManifest)
		if r.status != 200 || !bytes.Equal(r.body, m) || r.header.Get("Content-Type") != mtOCIManifest || r.header.Get("Docker-Content-Digest") != md {
			t.Fatalf("GET %s: %d %v", ref, r.status, r.header)
		}
	}
	// Tags via ?tag= on a push by digest.
	r = tr.do("PUT", "/v2/repo/manifests/"+md+"?tag=v2&tag=v3", m, "Content-Type", mtOCIManifest)
	tr.expect(r, 201, "")
	if got := r.header.Values("OCI-Tag"); !slices.Equal(got, []string{"v2", "v3"}) {
		t.Fatalf("OCI-Tag = %v", got)
	}
	// Paged tag list with Link.
	r = tr.do("GET", "/v2/repo/tags/list?n=2", nil)
	tr.expect(r, 200, "")
	if !strings.Contains(string(r.body), `"tags":["v1","v2"]`) || !strings.Contains(r.header.Get("Link"), "last=v2") {
		t.Fatalf("tags page 1: %s %v", r.body, r.header)
	}
	r = tr.do("GET", "/v2/repo/tags/list?n=2&last=v2", nil)
	if !strings.Contains(string(r.body), `"tags":["v3"]`) || r.header.Get("Link") != "" {
		t.Fatalf("tags page 2: %s %v", r.body, r.header)
	}
	tr.expect(tr.do("GET", "/v2/nope/tags/list", nil), 404, codeNameUnknown)

	// A referrer whose subject exists, and one whose subject does not yet.
	cfgEmpty := []byte("{}")
	ed := tr.pushBlob("repo", cfgEmpty)
	art := func(subject, at string) (string, []byte) {
		b := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],"subject":{"mediaType":"%s","digest":"%s","size":1}}`,
			mtOCIManifest, at, ed, mtOCIManifest, subject))
		return sha(b), b
	}
	sigD, sig := art(md, "application/x.signature")
	sbomD, sbom := art(md, "application/x.sbom")
	r = tr.do("PUT", "/v2/repo/manifests/"+sigD, sig, "Content-Type", mtOCIManifest)
	tr.expect(r, 201, "")
	if r.header.Get("OCI-Subject") != md {
		t.Fatalf("OCI-Subject = %q", r.header.Get("OCI-Subject"))
	}
	tr.expect(tr.do("PUT", "/v2/repo/manifests/"+sbomD, sbom, "Content-Type", mtOCIManifest), 201, "")
	orphanD, orphan := art(sha([]byte("not pushed")), "application/x.sbom")
	tr.expect(tr.do("PUT", "/v2/repo/manifests/"+orphanD, orphan, "Content-Type", mtOCIManifest), 201, "")

	var idx struct {
		Manifests []descriptor `json:"manifests"`
	}
	r = tr.do("GET", "/v2/repo/referrers/"+md, nil)
	tr.expect(r, 200, "")
	json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 2 || r.header.Get("Content-Type") != mtOCIIndex {
		t.Fatalf("referrers: %s", r.body)
	}
	r = tr.do("GET", "/v2/repo/referrers/"+md+"?artifactType=application/x.sbom", nil)
	json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sbomD || r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %s %v", r.body, r.header)
	}
	r = tr.do("GET", "/v2/repo/referrers/"+sha([]byte("nothing")), nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Fatalf("empty referrers: %d %s", r.status, r.body)
	}

	// Index referencing the image.
	ix := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d}]}`, mtOCIIndex, mtOCIManifest, md, len(m)))
	tr.expect(tr.do("PUT", "/v2/repo/manifests/index", ix, "Content-Type", mtOCIIndex), 201, "")

	// Deleting a tag keeps the manifest; deleting by digest removes its
	// tags and its referrer entry.
	tr.expect(tr.do("DELETE", "/v2/repo/manifests/v3", nil), 202, "")
	tr.expect(tr.do("GET", "/v2/repo/manifests/v3", nil), 404, codeManifestUnknown)
	tr.expect(tr.do("GET", "/v2/repo/manifests/"+md, nil), 200, "")
	tr.expect(tr.do("DELETE", "/v2/repo/manifests/"+sigD, nil), 202, "")
	r = tr.do("GET", "/v2/repo/referrers/"+md, nil)
	json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("referrers after delete: %s", r.body)
	}
	tr.expect(tr.do("DELETE", "/v2/repo/manifests/"+md, nil), 202, "")
	tr.expect(tr.do("GET", "/v2/repo/manifests/v1", nil), 404, codeManifestUnknown)
	tr.expect(tr.do("GET", "/v2/repo/manifests/"+md, nil), 404, codeManifestUnknown)
	tr.expect(tr.do("DELETE", "/v2/repo/manifests/"+md, nil), 404, codeManifestUnknown)
}

func TestCatalogPaging(t *testing.T) {
	tr := newTestRegistry(t)
	names := []string{"a", "a-b", "a/b", "b", "c/d/e"}
	for _, n := range names {
		tr.pushBlob(n, []byte(n))
	}
	var got []string
	path := "/v2/_catalog?n=2"
	for i := 0; path != "" && i < 10; i++ {
		r := tr.do("GET", path, nil)
		tr.expect(r, 200, "")
		var c struct{ Repositories []string }
		json.Unmarshal(r.body, &c)
		got = append(got, c.Repositories...)
		path = ""
		if l := r.header.Get("Link"); l != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Fatalf("catalog = %v, want %v", got, names)
	}
}

// TestBadInput: every malformed request gets its error code and leaves the
// store exactly as it was.
func TestBadInput(t *testing.T) {
	tr := newTestRegistry(t)
	good := []byte("good blob")
	gd := tr.pushBlob("repo", good)
	md, m := tr.imageManifest("repo", good)
	tr.expect(tr.do("PUT", "/v2/repo/manifests/v1", m, "Content-Type", mtOCIManifest), 201, "")
	missingLayer := bytes.Replace(m, []byte(gd), []byte(sha([]byte("never pushed"))), 1)
	wrongSize := bytes.Replace(m, []byte(fmt.Sprintf(`"size":%d}]`, len(good))), []byte(`"size":1}]`), 1)
	index := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":1}]}`, mtOCIIndex, mtOCIManifest, sha([]byte("no child"))))
	huge := append([]byte(`{"schemaVersion":2,"annotations":{"x":"`), bytes.Repeat([]byte("a"), 4<<20)...)
	huge = append(huge, `"}}`...)
	// Manifests whose meaning depends on the JSON parser (CVE-2021-41190):
	// Go keeps the last duplicate and matches keys case-insensitively, so
	// each of these would pass with the missing layer hidden from Stratus.
	open := func(b []byte) string { return string(b[:len(b)-1]) }
	shadowCase := []byte(open(missingLayer) + `,"LAYERS":[]}`)
	shadowDup := []byte(open(missingLayer) + `,"layers":[]}`)
	dupAnnotation := []byte(open(m) + `,"annotations":{"a":"1","a":"2"}}`)
	configCase := bytes.Replace(m, []byte(`"config":{"mediaType"`), []byte(`"config":{"MediaType"`), 1)
	platformCase := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux","OS":"windows"}}]}`, mtOCIIndex, mtOCIManifest, md, len(m)))
	childWrongSize := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d}]}`, mtOCIIndex, mtOCIManifest, md, len(m)+1))

	// A chunked upload in progress, for range errors.
	r := tr.do("POST", "/v2/repo/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	tr.expect(tr.do("PATCH", loc, []byte("0123456789"), "Content-Range", "0-9"), 202, "")
	fresh := tr.do("POST", "/v2/repo/blobs/uploads/", nil).header.Get("Location")
	// A 416 on an upload carries the range the upload really has.
	uploadRange := map[string]string{loc: "0-9", fresh: "0-0"}
	before := tr.keys()

	for _, tc := range []struct {
		name    string
		method  string
		path    string
		body    []byte
		headers []string
		status  int
		code    string
		chunked bool
	}{
		{"dotdot name", "GET", "/v2/../manifests/v1", nil, nil, 400, codeNameInvalid, false},
		{"encoded dotdot", "PUT", "/v2/%2e%2e/repo/manifests/v1", m, []string{"Content-Type", mtOCIManifest}, 400, codeNameInvalid, false},
		{"encoded slash", "POST", "/v2/a%2fb/blobs/uploads/", nil, nil, 400, codeNameInvalid, false},
		{"uppercase name", "POST", "/v2/Repo/blobs/uploads/?digest=" + gd, good, nil, 400, codeNameInvalid, false},
		{"underscore component", "PUT", "/v2/repo/_tags/manifests/v1", m, []string{"Content-Type", mtOCIManifest}, 400, codeNameInvalid, false},
		{"bad tag", "PUT", "/v2/repo/manifests/-v1", m, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"bad tag param", "PUT", "/v2/repo/manifests/" + md + "?tag=a/b", m, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"bad blob digest", "GET", "/v2/repo/blobs/sha256:1234", nil, nil, 400, codeDigestInvalid, false},
		{"unknown algorithm", "HEAD", "/v2/repo/blobs/md5:" + strings.Repeat("a", 32), nil, nil, 400, "", false},
		{"bad upload digest", "POST", "/v2/repo/blobs/uploads/?digest=sha256:zz", good, nil, 400, codeDigestInvalid, false},
		{"monolithic digest mismatch", "POST", "/v2/repo/blobs/uploads/?digest=" + sha([]byte("other")), good, nil, 400, codeDigestInvalid, false},
		{"chunked digest mismatch", "PUT", loc + "?digest=" + sha([]byte("other")), nil, nil, 400, codeDigestInvalid, false},
		{"final PUT without digest", "PUT", loc, nil, nil, 400, codeDigestInvalid, false},
		{"chunk out of order", "PATCH", loc, []byte("abc"), []string{"Content-Range", "20-22"}, 416, codeBlobUploadInvalid, false},
		{"chunk range malformed", "PATCH", loc, []byte("abc"), []string{"Content-Range", "x-y"}, 416, codeBlobUploadInvalid, false},
		{"chunk length mismatch", "PATCH", loc, []byte("abc"), []string{"Content-Range", "10-19"}, 400, codeSizeInvalid, false},
		{"chunk length overflows", "PATCH", fresh, []byte("0123456789"), []string{"Content-Range", "0-9223372036854775807"}, 416, codeBlobUploadInvalid, true},
		{"chunk length overflows, RFC form", "PATCH", fresh, []byte("0123456789"), []string{"Content-Range", "bytes 0-9223372036854775807/*"}, 416, codeBlobUploadInvalid, true},
		{"chunk end past the limit", "PATCH", loc, []byte("0123456789"), []string{"Content-Range", "10-9223372036854775807"}, 416, codeBlobUploadInvalid, true},
		{"final chunk length overflows", "PUT", fresh + "?digest=" + sha([]byte("0123456789")), []byte("0123456789"), []string{"Content-Range", "0-9223372036854775807"}, 416, codeBlobUploadInvalid, true},
		{"blob range", "GET", "/v2/repo/blobs/" + gd, nil, []string{"Range", "bytes=100-200"}, 416, codeRangeInvalid, false},
		{"unknown upload", "PATCH", "/v2/repo/blobs/uploads/" + strings.Repeat("0", 32), []byte("x"), nil, 404, codeBlobUploadUnknown, false},
		{"upload of another repo", "PATCH", strings.Replace(loc, "/repo/", "/other/", 1), []byte("x"), nil, 404, codeBlobUploadUnknown, false},
		{"malformed upload id", "GET", "/v2/repo/blobs/uploads/..%2f..", nil, nil, 404, codeBlobUploadUnknown, false},
		{"oversize manifest", "PUT", "/v2/repo/manifests/big", huge, []string{"Content-Type", mtOCIManifest}, 413, codeManifestInvalid, false},
		{"malformed manifest", "PUT", "/v2/repo/manifests/bad", []byte(`{"schemaVersion":2,`), []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"inconsistent media type", "PUT", "/v2/repo/manifests/bad", m, []string{"Content-Type", mtOCIIndex}, 400, codeManifestInvalid, false},
		{"manifest digest mismatch", "PUT", "/v2/repo/manifests/" + sha([]byte("x")), m, []string{"Content-Type", mtOCIManifest}, 400, codeDigestInvalid, false},
		{"missing layer", "PUT", "/v2/repo/manifests/bad", missingLayer, []string{"Content-Type", mtOCIManifest}, 400, codeManifestBlobUnknown, false},
		{"layer of another repo", "PUT", "/v2/other/manifests/bad", m, []string{"Content-Type", mtOCIManifest}, 400, codeManifestBlobUnknown, false},
		{"wrong layer size", "PUT", "/v2/repo/manifests/bad", wrongSize, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"missing child manifest", "PUT", "/v2/repo/manifests/bad", index, []string{"Content-Type", mtOCIIndex}, 400, codeManifestBlobUnknown, false},
		{"wrong child manifest size", "PUT", "/v2/repo/manifests/bad", childWrongSize, []string{"Content-Type", mtOCIIndex}, 400, codeManifestInvalid, false},
		{"layers shadowed by LAYERS", "PUT", "/v2/repo/manifests/bad", shadowCase, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"layers shadowed by a duplicate", "PUT", "/v2/repo/manifests/bad", shadowDup, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"duplicate annotation", "PUT", "/v2/repo/manifests/bad", dupAnnotation, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"descriptor key in the wrong case", "PUT", "/v2/repo/manifests/bad", configCase, []string{"Content-Type", mtOCIManifest}, 400, codeManifestInvalid, false},
		{"platform keys differing in case", "PUT", "/v2/repo/manifests/bad", platformCase, []string{"Content-Type", mtOCIIndex}, 400, codeManifestInvalid, false},
		{"unknown manifest", "GET", "/v2/repo/manifests/nope", nil, nil, 404, codeManifestUnknown, false},
		{"bad n", "GET", "/v2/repo/tags/list?n=-1", nil, nil, 400, "", false},
		{"tags of unknown repo", "GET", "/v2/nope/tags/list", nil, nil, 404, codeNameUnknown, false},
		{"tags of unknown repo after last", "GET", "/v2/nope/tags/list?last=x", nil, nil, 404, codeNameUnknown, false},
		{"tags of unknown repo, one page", "GET", "/v2/nope/tags/list?n=1&last=a", nil, nil, 404, codeNameUnknown, false},
		{"method", "POST", "/v2/repo/manifests/v1", m, nil, 405, codeUnsupported, false},
		{"not the API", "GET", "/v3/", nil, nil, 404, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tr.send(tc.method, tc.path, tc.body, tc.chunked, tc.headers...)
			if r.status != tc.status || (tc.code != "" && r.code() != tc.code) {
				t.Fatalf("got %d %.300s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if want, ok := uploadRange[strings.Split(tc.path, "?")[0]]; ok && tc.status == 416 && r.header.Get("Range") != want {
				t.Fatalf("416 Range = %q, want %q", r.header.Get("Range"), want)
			}
			if after := tr.keys(); !slices.Equal(before, after) {
				t.Fatalf("store changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// The upload survived every bad request at its old offset.
	for u, want := range uploadRange {
		if got := tr.do("GET", u, nil).header.Get("Range"); got != want {
			t.Fatalf("upload %s: range after bad requests = %q, want %q", u, got, want)
		}
	}
}

// TestConcurrentWritersOneSession: two PATCHes of the same bytes at the same
// offset; exactly one is accepted, the other gets a clean 416/409, and the
// blob is not corrupted.
func TestConcurrentWritersOneSession(t *testing.T) {
	tr := newTestRegistry(t)
	chunk := randomBytes(1 << 20)
	for round := 0; round < 5; round++ {
		r := tr.do("POST", "/v2/race/blobs/uploads/", nil)
		loc := r.header.Get("Location")
		var wg sync.WaitGroup
		statuses := make([]int, 4)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = tr.do("PATCH", loc, chunk, "Content-Range", fmt.Sprintf("0-%d", len(chunk)-1)).status
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch s {
			case 202:
				ok++
			case 416, 409:
			default:
				t.Fatalf("unexpected status %d", s)
			}
		}
		if ok != 1 {
			t.Fatalf("statuses %v: want exactly one 202", statuses)
		}
		d := sha(chunk)
		tr.expect(tr.do("PUT", loc+"?digest="+d, nil), 201, "")
	}
}

// TestTruncatedChunk: a client that announces more bytes than it sends gets
// a 400 with the range to resume from, and the upload stays where it was.
func TestTruncatedChunk(t *testing.T) {
	tr := newTestRegistry(t)
	r := tr.do("POST", "/v2/cut/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	tr.expect(tr.do("PATCH", loc, []byte("0123456789"), "Content-Range", "0-9"), 202, "")

	conn, err := net.Dial("tcp", strings.TrimPrefix(tr.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Range: 10-109\r\n\r\n%s", loc, strings.Repeat("a", 40))
	conn.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(body), codeBlobUploadInvalid) || res.Header.Get("Range") != "0-9" {
		t.Fatalf("truncated chunk: %d %v %s", res.StatusCode, res.Header, body)
	}
	if got := tr.do("GET", loc, nil).header.Get("Range"); got != "0-9" {
		t.Fatalf("upload moved to %q after a truncated chunk", got)
	}
	tr.expect(tr.do("PATCH", loc, []byte("abc"), "Content-Range", "10-12"), 202, "")

	// The same for a monolithic upload and a manifest: 400, nothing stored.
	before := tr.keys()
	for _, path := range []string{"/v2/cut/blobs/uploads/?digest=" + sha([]byte(strings.Repeat("b", 100))), "/v2/cut/manifests/v1"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(tr.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		method := "POST"
		if strings.Contains(path, "manifests") {
			method = "PUT"
		}
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 100\r\n\r\n%s", method, path, mtOCIManifest, strings.Repeat("b", 40))
		conn.(*net.TCPConn).CloseWrite()
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 400 {
			t.Errorf("truncated %s %s: %d", method, path, res.StatusCode)
		}
	}
	if after := tr.keys(); !slices.Equal(before, after) {
		t.Fatalf("a truncated request stored something: %v", after)
	}
}

// referrerManifest is an artifact manifest whose subject is subject, with
// one annotation of annotationBytes bytes so records and pages grow.
func (tr *testRegistry) referrerManifest(repo, subject, artifactType string, annotationBytes int) (string, []byte) {
	tr.t.Helper()
	ed := tr.pushBlob(repo, []byte("{}"))
	// "<" and "&" are one byte in the manifest but six once HTML-escaped:
	// a record must not grow past what the manifest limit allows.
	ann := strings.Repeat("<&", annotationBytes/2+1)[:annotationBytes]
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(map[string]any{
		"schemaVersion": 2, "mediaType": mtOCIManifest, "artifactType": artifactType,
		"config":      map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2},
		"layers":      []any{},
		"subject":     map[string]any{"mediaType": mtOCIManifest, "digest": subject, "size": 1},
		"annotations": map[string]string{"x.payload": ann, "x.id": randomHex(8)},
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	return sha(buf.Bytes()), buf.Bytes()
}

func randomHex(n int) string { return fmt.Sprintf("%x", randomBytes(n)) }

// referrers follows the Link headers of the referrers API from path and
// returns every page's descriptors and the size of each response.
func (tr *testRegistry) referrers(path string) (pages [][]descriptor, sizes []int) {
	tr.t.Helper()
	for i := 0; path != ""; i++ {
		if i > 100 {
			tr.t.Fatal("referrers pagination does not end")
		}
		r := tr.do("GET", path, nil)
		tr.expect(r, 200, "")
		var idx struct {
			SchemaVersion int          `json:"schemaVersion"`
			MediaType     string       `json:"mediaType"`
			Manifests     []descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(r.body, &idx); err != nil || idx.SchemaVersion != 2 || idx.MediaType != mtOCIIndex || idx.Manifests == nil {
			tr.t.Fatalf("referrers page %s: %v %.200s", path, err, r.body)
		}
		pages = append(pages, idx.Manifests)
		sizes = append(sizes, len(r.body))
		path = ""
		if l := r.header.Get("Link"); l != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	return pages, sizes
}

// TestReferrersLargeAndMany: referrers with large annotations and many
// referrers are listed completely, page by page, each page bounded in
// entries and bytes; a corrupt or oversized record is skipped, never a 500.
func TestReferrersLargeAndMany(t *testing.T) {
	for _, maxEntries := range []int{7, 0} {
		t.Run(fmt.Sprintf("max_referrers=%d", maxEntries), func(t *testing.T) { testReferrersLargeAndMany(t, maxEntries) })
	}
}

func testReferrersLargeAndMany(t *testing.T, maxEntries int) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	tr, reg := newTestRegistryWith(t, Config{MaxReferrers: maxEntries}, locks)
	maxEntries = reg.cfg.MaxReferrers
	subject, m := tr.imageManifest("repo", []byte("layer"))
	tr.expect(tr.do("PUT", "/v2/repo/manifests/v1", m, "Content-Type", mtOCIManifest), 201, "")
	subj, _ := ParseDigest(subject)

	want := map[string]descriptor{}
	push := func(at string, annotationBytes int) {
		d, b := tr.referrerManifest("repo", subject, at, annotationBytes)
		tr.expect(tr.do("PUT", "/v2/repo/manifests/"+d, b, "Content-Type", mtOCIManifest), 201, "")
		var doc manifestDoc
		json.Unmarshal(b, &doc)
		want[d] = descriptor{MediaType: mtOCIManifest, Digest: d, Size: int64(len(b)), ArtifactType: at, Annotations: doc.Annotations}
	}
	// Referrers with 100 KiB of annotations, one as large as a manifest
	// may be (no page holds it and another), and many small ones.
	push("application/x.big", int(reg.cfg.MaxManifestSize)-1024)
	for i := 0; i < 10; i++ {
		push("application/x.big", 100<<10)
	}
	for i := 0; i < 20; i++ {
		push("application/x.small", 100)
	}
	// Records nobody can use: not JSON, not a descriptor, too large.
	ctx := context.Background()
	for i, body := range [][]byte{[]byte("{not json"), []byte(`{"digest":"nope"}`), bytes.Repeat([]byte(" "), 4<<20+8192)} {
		key := referrerKey("repo", subj, computeDigest("sha256", []byte{byte(i)}))
		if _, err := tr.store.Put(ctx, key, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name, filter string
		minPages     int // the entry bound, or the byte bound, splits it
	}{
		{"all", "", 2},
		{"big only", "application/x.big", 2},
		{"small only", "application/x.small", 1},
		{"none", "application/x.none", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v2/repo/referrers/" + subject
			if tc.filter != "" {
				path += "?artifactType=" + tc.filter
			}
			pages, sizes := tr.referrers(path)
			if len(pages) < tc.minPages {
				t.Fatalf("%d pages, want at least %d", len(pages), tc.minPages)
			}
			got := map[string]descriptor{}
			for i, page := range pages {
				if len(page) > maxEntries || len(page) == 0 && len(pages) > 1 {
					t.Fatalf("page %d has %d entries", i, len(page))
				}
				// A page holds at most maxReferrersPage bytes of records,
				// or a single record (which a manifest bounds).
				if len(page) > 1 && sizes[i] > 4<<20+1024 {
					t.Fatalf("page %d: %d bytes with %d entries", i, sizes[i], len(page))
				}
				for _, d := range page {
					if _, dup := got[d.Digest]; dup {
						t.Fatalf("%s listed twice", d.Digest)
					}
					got[d.Digest] = d
				}
			}
			n := 0
			for d, w := range want {
				if tc.filter != "" && w.ArtifactType != tc.filter {
					continue
				}
				n++
				if !reflect.DeepEqual(got[d], w) {
					t.Fatalf("%s: got %.200v, want %.200v", d, got[d], w)
				}
			}
			if len(got) != n {
				t.Fatalf("listed %d referrers, want %d", len(got), n)
			}
		})
	}
}
