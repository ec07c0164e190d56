package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/net/html"
)

const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

// seedPages pushes an image with hostile labels and annotations, a second
// platform, an index of both and five referrers of the first image.
func seedPages(t *testing.T) (e *env, img, index v1.Descriptor) {
	e = newTestEnv(t, envOptions{})
	img = e.pushImage("team/app", "v1", imageSpec{
		layers:      [][]byte{layerOf(1), layerOf(3), layerOf(6)},
		labels:      map[string]string{"evil": hostile, "org.opencontainers.image.title": "app"},
		env:         []string{"PATH=/usr/bin", "API_TOKEN=hunter2"},
		annotations: map[string]string{"evil": hostile, "org.opencontainers.image.source": "javascript:alert(3)", "org.opencontainers.image.url": "https://example.test/app"},
	})
	arm := e.pushImage("team/app", "", imageSpec{layers: [][]byte{layerOf(2)}, os: "linux", arch: "arm64"})
	idx, _ := json.Marshal(v1.Index{Versioned: specsV2(), MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{img, arm}})
	index = e.pushManifest("team/app", "multi", v1.MediaTypeImageIndex, idx)
	e.pushReferrer("team/app", img, "application/vnd.dev.cosign.artifact.sig.v1+json", "application/octet-stream", []byte("sig"))
	e.pushReferrer("team/app", img, "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
	e.pushReferrer("team/app", img, "application/sarif+json", "application/sarif+json", []byte(sarifReport))
	e.pushReferrer("team/app", img, "application/vnd.example.other", "application/octet-stream", []byte("x"))
	// Trivy's JSON under a type of the pusher's choosing: found by content.
	e.pushReferrer("team/app", img, "application/vnd.example.report", "application/json",
		[]byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"Severity":"HIGH"},{"Severity":"HIGH"}]}]}`))
	return e, img, index
}

type pageCase struct {
	name  string
	path  string
	check func(t *testing.T, p htmlPage)
}

// pageCases are the pages of the seedPages content and what each shows.
func pageCases(e *env, img, index v1.Descriptor) []pageCase {
	return []pageCase{{"repositories list and tree", "/ui/", func(t *testing.T, p htmlPage) {
		want(t, p.texts("a.repo-link"), []string{"team/app"})
		want(t, p.texts("a.ns-link"), []string{"team/"})
		expectOne(t, p, "form#repo-search")
	}},
		{"repository tags", "/ui/r/team/app/", func(t *testing.T, p htmlPage) {
			want(t, p.texts("a.tag-link"), []string{"multi", "v1"})
			if n := len(p.all("code.pull-cmd")); n != 6 {
				t.Errorf("pull commands: %d, want 3 per tag", n)
			}
			host := strings.TrimPrefix(e.srv.URL, "http://")
			for _, c := range []string{"docker pull " + host + "/team/app:v1", "podman pull " + host + "/team/app:v1", "crane pull " + host + "/team/app:v1"} {
				if !strings.Contains(p.body, c) {
					t.Errorf("no %q", c)
				}
			}
			// v1: config + 1+3+6 hundred bytes of layers.
			if !strings.Contains(p.body, "linux/arm64") || !strings.Contains(p.body, "sum over 2 manifests") {
				t.Errorf("index row lacks platforms or its size note")
			}
		}},
		{"image page", "/ui/r/team/app/-/manifest/" + img.Digest.String(), func(t *testing.T, p htmlPage) {
			if n := len(p.all("rect.layer")); n != 3 {
				t.Errorf("layer rects: %d, want 3", n)
			}
			expectOne(t, p, "svg#layer-bar")
			cfg := text(expectOne(t, p, "section#config"))
			for _, s := range []string{"linux/amd64", "2026-03-04 05:06:07 UTC", "/bin/app", "--serve", "API_TOKEN", "PATH"} {
				if !strings.Contains(cfg, s) {
					t.Errorf("config section lacks %q", s)
				}
			}
			if strings.Contains(p.body, "hunter2") || strings.Contains(p.body, "/usr/bin") {
				t.Errorf("an env value is shown")
			}
			ann := text(expectOne(t, p, "section#annotations"))
			if !strings.Contains(ann, "example.test/app") {
				t.Errorf("annotations: %q", ann)
			}
			expectOne(t, p, "a#referrers-link")
		}},
		{"index page", "/ui/r/team/app/-/manifest/" + index.Digest.String(), func(t *testing.T, p htmlPage) {
			want(t, p.texts("a.platform-link"), []string{"linux/amd64", "linux/arm64"})
		}},
		{"referrers classified", "/ui/r/team/app/-/referrers/" + img.Digest.String(), func(t *testing.T, p htmlPage) {
			var kinds []string
			for _, n := range p.all("tr.referrer-row") {
				kinds = append(kinds, attr(n, "data-kind"))
			}
			slices.Sort(kinds)
			want(t, kinds, []string{"other", "sbom", "scan", "scan", "signature"})
			sum := p.texts("span.scan-summary")
			slices.Sort(sum)
			if len(sum) != 2 || !strings.Contains(sum[0], "SARIF: critical 1") || !strings.Contains(sum[0], "medium 2") || !strings.Contains(sum[1], "Trivy: high 2") {
				t.Errorf("scan summaries: %q", sum)
			}
		}},
		{"storage before any GC", "/ui/storage", func(t *testing.T, p htmlPage) {
			if !strings.Contains(p.body, "No GC pass has run yet") {
				t.Errorf("no notice that GC has not run")
			}
		}},
		{"status", "/ui/status", func(t *testing.T, p htmlPage) {
			for _, s := range []string{"section#gc-report", "section#health", "section#webhooks"} {
				expectOne(t, p, s)
			}
			if !strings.Contains(text(expectOne(t, p, "section#webhooks")), "not configured") {
				t.Errorf("webhooks not shown as not configured")
			}
		}},
	}
}

func TestPages(t *testing.T) {
	e, img, index := seedPages(t)
	b := e.browser()
	for _, tt := range pageCases(e, img, index) {
		t.Run(tt.name, func(t *testing.T) {
			p := b.get(tt.path)
			if p.status != http.StatusOK {
				t.Fatalf("status %d: %s", p.status, p.body)
			}
			checkHeaders(t, p, true)
			expectOne(t, p, "nav#nav")
			for _, id := range []string{"a#nav-repos", "a#nav-storage", "a#nav-status"} {
				expectOne(t, p, id)
			}
			tt.check(t, p)
		})
	}
}

func TestPagesEscapeHostileValues(t *testing.T) {
	e, img, _ := seedPages(t)
	p := e.browser().get("/ui/r/team/app/-/manifest/" + img.Digest.String())
	if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
		t.Errorf("hostile markup rendered unescaped")
	}
	if !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the escaped label is not shown")
	}
	for _, a := range p.all("a") {
		if strings.HasPrefix(strings.ToLower(attr(a, "href")), "javascript:") {
			t.Errorf("javascript: link rendered: %q", attr(a, "href"))
		}
	}
	if s := p.all("script"); len(s) != 1 || attr(s[0], "src") != "/ui/static/ui.js" {
		t.Errorf("a script element other than the UI's own")
	}
}

func TestTagRedirect(t *testing.T) {
	e, img, _ := seedPages(t)
	p := e.browser().get("/ui/r/team/app/-/tag/v1")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != manifestURL("team/app", img.Digest) {
		t.Errorf("got %d %q", p.status, p.header.Get("Location"))
	}
	checkHeaders(t, p, true)
}

func TestStoragePage(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	shared := layerOf(5)
	e.pushImage("a/one", "v1", imageSpec{layers: [][]byte{shared, layerOf(7)}})
	e.pushImage("b/two", "v1", imageSpec{layers: [][]byte{shared}})
	if _, err := e.reg.RunGC(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	p := e.browser().get("/ui/storage")
	if p.status != http.StatusOK {
		t.Fatalf("status %d", p.status)
	}
	checkHeaders(t, p, true)
	expectOne(t, p, "svg#storage-chart")
	expectOne(t, p, "table#storage-table")
	var repos []string
	for _, n := range p.all("rect.repo-bar") {
		repos = append(repos, attr(n, "data-repo"))
	}
	// Sorted by bytes: a/one has the shared layer and one of its own.
	want(t, repos, []string{"a/one", "b/two"})
	if widths := p.all("rect.repo-bar"); attr(widths[0], "width") != "1000" {
		t.Errorf("the largest bar is %s wide, want the full 1000", attr(widths[0], "width"))
	}
}

func TestPagination(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	for i := range 5 {
		e.pushImage(fmt.Sprintf("org/r%d", i), "v1", imageSpec{layers: [][]byte{layerOf(1)}})
	}
	for i := range 5 {
		e.pushImage("org/r0", fmt.Sprintf("t%d", i), imageSpec{layers: [][]byte{layerOf(1)}})
	}
	tests := []struct {
		name, start, sel string
		want             [][]string
	}{
		{"repositories", "/ui/?n=2", "a.repo-link", [][]string{{"org/r0", "org/r1"}, {"org/r2", "org/r3"}, {"org/r4"}}},
		{"repositories by prefix", "/ui/?n=1&q=org/r3", "a.repo-link", [][]string{{"org/r3"}}},
		{"tags", "/ui/r/org/r0/?n=2", "a.tag-link", [][]string{{"t0", "t1"}, {"t2", "t3"}, {"t4", "v1"}}},
	}
	b := e.browser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.start
			for i, w := range tt.want {
				p := b.get(path)
				want(t, p.texts(tt.sel), w)
				next := p.all("a#next-page")
				if last := i == len(tt.want)-1; last != (len(next) == 0) {
					t.Fatalf("page %d: next link present=%v", i, len(next) > 0)
				}
				if len(next) > 0 {
					path = attr(next[0], "href")
				}
			}
		})
	}
	t.Run("bad page size", func(t *testing.T) {
		for _, path := range []string{"/ui/?n=0", "/ui/?n=abc", "/ui/r/org/r0/?n=100000", "/ui/r/org/r0/?last=%2F.."} {
			if p := b.get(path); p.status != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", path, p.status)
			}
		}
	})
}

func TestNotFoundAndMethods(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.pushImage("team/app", "v1", imageSpec{layers: [][]byte{layerOf(1)}})
	b := e.browser()
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/ui/r/team/missing/", http.StatusOK}, // an empty repository lists no tags
		{"GET", "/ui/r/team/app/-/tag/nope", http.StatusNotFound},
		{"GET", "/ui/r/team/app/-/manifest/sha256:" + strings.Repeat("0", 64), http.StatusNotFound},
		{"GET", "/ui/r/team/app/-/manifest/notadigest", http.StatusNotFound},
		{"GET", "/ui/r/Bad..Name/", http.StatusNotFound},
		{"GET", "/ui/nope", http.StatusNotFound},
		{"GET", "/ui/static/../ui.go", http.StatusNotFound},
		{"GET", "/ui/static/style.css", http.StatusOK},
		{"POST", "/ui/status", http.StatusMethodNotAllowed},
		{"GET", "/ui/logout", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tt.method, e.srv.URL+tt.path, nil)
		p := b.do(req)
		if p.status != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, p.status, tt.status)
		}
		checkHeaders(t, p, !strings.HasPrefix(tt.path, "/ui/static/style"))
	}
}

// checkHeaders checks the security headers (and no-store on pages).
func checkHeaders(t *testing.T, p htmlPage, isPage bool) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
	} {
		if got := p.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if isPage && p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control: %q", p.header.Get("Cache-Control"))
	}
}

func expectOne(t *testing.T, p htmlPage, sel string) *html.Node {
	t.Helper()
	ns := p.all(sel)
	if len(ns) != 1 {
		t.Fatalf("%s: %d elements, want 1", sel, len(ns))
	}
	return ns[0]
}

func want(t *testing.T, got, w []string) {
	t.Helper()
	if !slices.Equal(got, w) {
		t.Errorf("got %q, want %q", got, w)
	}
}

func specsV2() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }

const sarifReport = `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"trivy","rules":[
 {"id":"CVE-1","properties":{"security-severity":"9.8"}},
 {"id":"CVE-2","properties":{"security-severity":"5.0"}}]}},
 "results":[{"ruleId":"CVE-1","level":"error"},{"ruleId":"CVE-2","level":"warning"},{"ruleId":"X","level":"warning"}]}]}`
