package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"

	"github.com/stratus-registry/stratus/auth"
	"github.com/stratus-registry/stratus/auth/htpasswd"
	"github.com/stratus-registry/stratus/auth/policy"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/policy/immutable"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

const testPassword = "s3cret-pass"

// env is a registry over a temporary filesystem store with the UI in
// front of it, served by httptest.
type env struct {
	t     *testing.T
	reg   *registry.Registry
	api   http.Handler // the API as clients reach it (auth middleware on)
	authz *auth.Authorizer
	srv   *httptest.Server
}

type envOptions struct {
	auth bool // htpasswd users admin, alice, bob and a policy
	tls  bool
}

// The policy of auth envs: anonymous visitors pull public/**; alice may
// pull and delete team/**, bob only pull it; admin may do everything.
var testPolicy = policy.Config{Rules: []policy.Rule{
	{Repository: "public/**", Anonymous: true, Users: []string{policy.Anyone}, Actions: []string{"pull"}},
	{Repository: "team/**", Users: []string{"alice"}, Actions: []string{"pull", "delete"}},
	{Repository: "team/**", Users: []string{"bob"}, Actions: []string{"pull"}},
	{Repository: "**", Users: []string{"admin"}, Actions: []string{"*"}},
}}

func newTestEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	drv, err := filesystem.New(filesystem.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	tags, err := immutable.New([]immutable.Rule{{Repository: "**", Tags: []string{"release-*"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t}
	deps := registry.Deps{Storage: drv, Locking: memory.New(), TagPolicy: tags}
	if o.auth {
		file := filepath.Join(t.TempDir(), "htpasswd")
		for _, u := range []string{"admin", "alice", "bob"} {
			if err := htpasswd.Set(file, u, testPassword, bcrypt.MinCost); err != nil {
				t.Fatal(err)
			}
		}
		pw, err := htpasswd.Open(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.New(testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		if e.authz, err = auth.New(auth.Options{Realm: "test", Passwords: pw, Policy: p}); err != nil {
			t.Fatal(err)
		}
		deps.Authorizer = e.authz
	}
	if e.reg, err = registry.New(ctx, registry.Config{}, deps); err != nil {
		t.Fatal(err)
	}
	e.api = e.reg
	opts := Options{Source: NewStoreSource(e.reg.Content()), API: e.reg, GC: e.reg, SessionTTL: time.Hour}
	if o.auth {
		e.api = e.authz.Middleware(e.reg)
		opts.Access = e.authz
	}
	u, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, Prefix) {
			u.ServeHTTP(w, r)
			return
		}
		e.api.ServeHTTP(w, r)
	})
	if o.tls {
		e.srv = httptest.NewTLSServer(mux)
	} else {
		e.srv = httptest.NewServer(mux)
	}
	t.Cleanup(e.srv.Close)
	return e
}

// apiDo sends an API request as admin (when auth is on).
func (e *env) apiDo(method, path, contentType string, body []byte) *http.Response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.SetBasicAuth("admin", testPassword)
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec.Result()
}

// pushBlob uploads b to repo through the API (monolithic POST + PUT).
func (e *env) pushBlob(repo string, b []byte) v1.Descriptor {
	e.t.Helper()
	d := digest.FromBytes(b)
	res := e.apiDo(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil)
	if res.StatusCode != http.StatusAccepted {
		e.t.Fatalf("start upload to %s: %d", repo, res.StatusCode)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	if res = e.apiDo(http.MethodPut, loc.RequestURI(), "application/octet-stream", b); res.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(res.Body)
		e.t.Fatalf("finish upload to %s: %d %s", repo, res.StatusCode, body)
	}
	return v1.Descriptor{Digest: d, Size: int64(len(b))}
}

// pushManifest puts a manifest under ref (a tag or its digest).
func (e *env) pushManifest(repo, ref, mediaType string, body []byte) v1.Descriptor {
	e.t.Helper()
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	if res := e.apiDo(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, body); res.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(res.Body)
		e.t.Fatalf("push manifest %s:%s: %d %s", repo, ref, res.StatusCode, b)
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

type imageSpec struct {
	layers      [][]byte
	labels      map[string]string
	env         []string
	annotations map[string]string
	os, arch    string
}

// pushImage pushes an image (config, layers, manifest) tagged tag.
func (e *env) pushImage(repo, tag string, s imageSpec) v1.Descriptor {
	e.t.Helper()
	if s.os == "" {
		s.os, s.arch = "linux", "amd64"
	}
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	cfg, _ := json.Marshal(v1.Image{Created: &created, Platform: v1.Platform{OS: s.os, Architecture: s.arch},
		Config: v1.ImageConfig{Labels: s.labels, Env: s.env, Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}}})
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Annotations: s.annotations}
	m.SchemaVersion = 2
	m.Config = e.pushBlob(repo, cfg)
	m.Config.MediaType = v1.MediaTypeImageConfig
	for _, l := range s.layers {
		d := e.pushBlob(repo, l)
		d.MediaType = v1.MediaTypeImageLayerGzip
		m.Layers = append(m.Layers, d)
	}
	body, _ := json.Marshal(m)
	desc := e.pushManifest(repo, tag, v1.MediaTypeImageManifest, body)
	desc.Platform = &v1.Platform{OS: s.os, Architecture: s.arch}
	return desc
}

// pushReferrer attaches an artifact with one layer to subject.
func (e *env) pushReferrer(repo string, subject v1.Descriptor, artifactType, layerType string, layer []byte) v1.Descriptor {
	e.t.Helper()
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, ArtifactType: artifactType, Subject: &subject}
	m.SchemaVersion = 2
	m.Config = e.pushBlob(repo, []byte("{}"))
	m.Config.MediaType = v1.MediaTypeEmptyJSON
	l := e.pushBlob(repo, layer)
	l.MediaType = layerType
	m.Layers = []v1.Descriptor{l}
	body, _ := json.Marshal(m)
	return e.pushManifest(repo, "", v1.MediaTypeImageManifest, body)
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t *testing.T
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: e.t, e: e, c: c}
}

type htmlPage struct {
	status int
	header http.Header
	body   string
	doc    *html.Node
}

func (b *browser) do(req *http.Request) htmlPage {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	return htmlPage{status: res.StatusCode, header: res.Header, body: string(body), doc: doc}
}

func (b *browser) get(path string) htmlPage {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) htmlPage {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// csrf is the token in the page's forms.
func (p htmlPage) csrf() string {
	for _, n := range p.all("input") {
		if attr(n, "name") == "csrf" {
			return attr(n, "value")
		}
	}
	return ""
}

// login signs in as user and returns the page the redirect lands on.
func (b *browser) login(user string) htmlPage {
	b.t.Helper()
	form := b.get("/ui/login")
	p := b.post("/ui/login", url.Values{"username": {user}, "password": {testPassword}, "csrf": {form.csrf()}})
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("login %s: %d %s", user, p.status, p.body)
	}
	return b.get(p.header.Get("Location"))
}

// all returns the elements with tag name (and, when given, every class
// in sel: "a.repo-link", "tr.tag-row", "svg#layer-bar").
func (p htmlPage) all(sel string) []*html.Node {
	tag, id, classes := parseSel(sel)
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (tag == "" || n.Data == tag) && (id == "" || attr(n, "id") == id) && hasClasses(n, classes) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
	return out
}

func (p htmlPage) texts(sel string) []string {
	var out []string
	for _, n := range p.all(sel) {
		out = append(out, text(n))
	}
	return out
}

func parseSel(sel string) (tag, id string, classes []string) {
	if t, i, ok := strings.Cut(sel, "#"); ok {
		return t, i, nil
	}
	parts := strings.Split(sel, ".")
	return parts[0], "", parts[1:]
}

func hasClasses(n *html.Node, want []string) bool {
	have := strings.Fields(attr(n, "class"))
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(sb.String())
}

func layerOf(n int) []byte { return bytes.Repeat([]byte{byte(n)}, n*100) }

func cookie(p htmlPage, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func hasCookie(p htmlPage, name string) bool {
	c := cookie(p, name)
	return c != nil && c.MaxAge >= 0 && c.Value != ""
}

// httptestRecorder renders one anonymous GET of h.
func httptestRecorder(h http.Handler, path string) htmlPage {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	doc, _ := html.Parse(strings.NewReader(rec.Body.String()))
	return htmlPage{status: rec.Code, header: rec.Header(), body: rec.Body.String(), doc: doc}
}
