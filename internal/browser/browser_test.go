package browser

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// pixel is a 1x1 PNG.
var pixel, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

// testSite serves the pages of these tests on 127.0.0.1 and counts the
// paths it was asked for.
type testSite struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newTestSite(t *testing.T) *testSite {
	t.Helper()
	s := &testSite{hits: map[string]int{}}
	mux := http.NewServeMux()
	page := func(path, csp, body string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if csp != "" {
				w.Header().Set("Content-Security-Policy", csp)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><html><head><title>t</title><link rel=icon href=\"data:,\"></head><body>%s</body></html>", strings.ReplaceAll(body, "LOCALHOST", "localhost:"+s.port()))
		})
	}
	page("/clean", "", `<h1 id="title">clean</h1><img id="local" src="/pixel.png">`)
	// The page tries what a careless UI would: a CDN script, a remote
	// image, a web font, a fetch and a WebSocket, next to its own image
	// (once by IP, once by the name localhost).
	page("/external", "", `<h1 id="title">external</h1>
<img id="local" src="/pixel.png"><img id="byname" src="http://LOCALHOST/pixel.png?byname">
<img id="remote" src="http://images.example.com/pixel.png">
<style>@font-face{font-family:f;src:url(https://fonts.example.net/f.woff2)} h1{font-family:f}</style>
<script src="https://cdn.example.net/lib.js"></script>
<script src="/app.js"></script>`)
	page("/broken", "script-src 'self'", `<h1 id="title">broken</h1><script>window.inline = 1</script><script src="/error.js"></script>`)
	mux.HandleFunc("/pixel.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(pixel)
	})
	script := func(path, body string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, body)
		})
	}
	script("/app.js", `fetch("https://api.example.org/track").catch(() => {});
new WebSocket("ws://ws.example.org/live").onerror = () => { window.wsFailed = true; };`)
	script("/error.js", `console.error("boom from error.js");`)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.RequestURI()]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testSite) port() string {
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	return port
}

func (s *testSite) hit(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func blockedURLs(f Findings) []string {
	var urls []string
	for _, a := range f.Blocked {
		urls = append(urls, a.URL)
	}
	slices.Sort(urls)
	return urls
}

func TestGuardBlocksAndRecordsExternalRequests(t *testing.T) {
	site := newTestSite(t)
	b := Start(t, Options{Artifacts: t.TempDir()})

	b.Do("open the page", chromedp.Navigate(site.URL+"/external"), chromedp.WaitVisible(chromedp.ID("title")))
	// The WebSocket fails on its own time; wait for it so that every
	// attempt of the page has happened before the findings are read.
	b.Do("wait for the WebSocket to fail", chromedp.Poll[chromedp.Void]("window.wsFailed === true"))
	for _, id := range []string{"local", "byname"} {
		if w := Run(b, "read "+id, chromedp.Evaluate[int](`document.getElementById("`+id+`").naturalWidth`)); w != 1 {
			t.Errorf("the loopback image #%s did not load (naturalWidth %d)", id, w)
		}
	}
	if site.hit("/pixel.png?byname") != 1 {
		t.Errorf("localhost was not reached by name: the host resolver rules must exclude it")
	}
	if w := Run(b, "read the remote image", chromedp.Evaluate[int](`document.getElementById("remote").naturalWidth`)); w != 0 {
		t.Errorf("the remote image has width %d, want it blocked", w)
	}

	f := b.Drain()
	t.Logf("findings:\n%s", f)
	want := []string{
		"http://images.example.com/pixel.png",
		"https://api.example.org/track",
		"https://cdn.example.net/lib.js",
		"https://fonts.example.net/f.woff2",
		"ws://ws.example.org/live",
	}
	if got := blockedURLs(f); !slices.Equal(got, want) {
		t.Errorf("blocked attempts:\n got %q\nwant %q", got, want)
	}
	kinds := map[string]string{}
	for _, a := range f.Blocked {
		kinds[a.URL] = a.Kind
	}
	if kinds["https://cdn.example.net/lib.js"] != "Script" || kinds["ws://ws.example.org/live"] != "WebSocket" {
		t.Errorf("attempt kinds %v", kinds)
	}
	// The failed loads also reach the browser log; they were drained with
	// the attempts, so the test ends clean.
	if !strings.Contains(f.String(), "ERR_BLOCKED_BY_CLIENT") {
		t.Errorf("no failed load in the console findings:\n%s", f)
	}
	// The Fetch domain does not pause WebSockets: the host resolver rules
	// are what stopped this one.
	if !strings.Contains(f.String(), "ERR_NAME_NOT_RESOLVED") {
		t.Errorf("the WebSocket did not fail to resolve:\n%s", f)
	}
}

func TestConsoleErrorsAndCSPViolationsAreRecorded(t *testing.T) {
	site := newTestSite(t)
	b := Start(t, Options{Artifacts: t.TempDir()})

	b.Do("open the page", chromedp.Navigate(site.URL+"/broken"), chromedp.WaitVisible(chromedp.ID("title")))
	if v := Run(b, "read window.inline", chromedp.Evaluate[bool](`window.inline === undefined`)); !v {
		t.Error("the inline script ran despite script-src 'self'")
	}
	f := b.Drain()
	t.Logf("findings:\n%s", f)
	if len(f.Blocked) != 0 {
		t.Errorf("blocked attempts on a loopback page: %v", f.Blocked)
	}
	text := f.String()
	for _, want := range []string{"boom from error.js", "Content Security Policy"} {
		if !strings.Contains(text, want) {
			t.Errorf("findings lack %q:\n%s", want, text)
		}
	}
}

func TestCleanPageAndScreenshots(t *testing.T) {
	site := newTestSite(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, "07-from-an-earlier-run.png")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := Start(t, Options{Artifacts: dir, Width: 800, Height: 600})
	b.Do("open the page", chromedp.Navigate(site.URL+"/clean"), chromedp.WaitVisible(chromedp.ID("title")))
	p := b.Screenshot("clean page")
	if filepath.Base(p) != "01-clean_page.png" {
		t.Errorf("screenshot named %s", p)
	}
	png, err := os.ReadFile(p)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is not a PNG (%v)", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("an earlier run's screenshot is still there (%v)", err)
	}
	if f := b.Drain(); !f.Empty() {
		t.Errorf("a clean page has findings:\n%s", f)
	}
}

// failureRecorder is a testing.TB whose cleanups run when the test asks
// and whose errors are recorded, to watch Start fail a test.
type failureRecorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *failureRecorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *failureRecorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *failureRecorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func TestUndrainedFindingsFailTheTest(t *testing.T) {
	site := newTestSite(t)
	rec := &failureRecorder{TB: t}
	// The browser stops even when the test fails before it asks.
	t.Cleanup(rec.runCleanups)
	b := Start(rec, Options{Artifacts: t.TempDir()})
	b.Do("open the page", chromedp.Navigate(site.URL+"/external"), chromedp.WaitVisible(chromedp.ID("title")))
	b.Do("wait for the WebSocket to fail", chromedp.Poll[chromedp.Void]("window.wsFailed === true"))
	rec.runCleanups()
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "blocked Script request to https://cdn.example.net/lib.js") {
		t.Fatalf("the test was not failed for its external requests: %q", rec.errors)
	}
}

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/ui/", true},
		{"https://127.0.0.1/x", true},
		{"http://localhost:5000/", true},
		{"http://LOCALHOST/", true},
		{"http://[::1]:9000/", true},
		{"ws://127.0.0.1:1/live", true},
		{"data:image/png;base64,AAAA", true},
		{"about:blank", true},
		{"blob:http://127.0.0.1:8080/0b4c", true},
		{"blob:https://cdn.example.net/0b4c", false},
		{"http://127.0.0.2/", false},
		{"http://127.0.0.1.example.com/", false},
		{"http://localhost.example.com/", false},
		{"https://fonts.googleapis.com/css", false},
		{"http://10.0.0.1/", false},
		{"ftp://127.0.0.1/", false},
		{"chrome-extension://abc/x.js", false},
		{"http://%zz/", false},
		{"http://127.0.0.1@evil.example/", false},
		{"http://evil.example#@127.0.0.1/", false},
		{"http://evil.example/?next=http://127.0.0.1/", false},
		{"//127.0.0.1/x", false},
		{"", false},
	} {
		if got := allowed(tc.url); got != tc.want {
			t.Errorf("allowed(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}

// FuzzAllowed: whatever URL a page makes, allowed never panics, and what it
// lets through names no host but a loopback one.
func FuzzAllowed(f *testing.F) {
	for _, seed := range []string{
		"http://127.0.0.1:8080/ui/", "http://localhost/", "http://[::1]:1/", "data:,x", "about:blank",
		"blob:http://127.0.0.1/u", "blob:blob:http://127.0.0.1/u", "https://cdn.example.net/x.js",
		"http://127.0.0.1@evil.example/", "ws://[::1%25eth0]/", "HTTP://LOCALHOST./",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !allowed(raw) {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("allowed(%q) but it does not parse: %v", raw, err)
		}
		switch strings.ToLower(u.Scheme) {
		case "data", "about":
		case "blob":
			if !allowed(u.Opaque) {
				t.Fatalf("allowed(%q) but its origin %q is not", raw, u.Opaque)
			}
		default:
			if h := strings.ToLower(u.Hostname()); h != "127.0.0.1" && h != "localhost" && h != "::1" {
				t.Fatalf("allowed(%q) lets host %q through", raw, h)
			}
		}
	})
}
