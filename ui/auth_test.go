package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/gc"
)

func TestVisibility(t *testing.T) {
	e := newTestEnv(t, envOptions{auth: true})
	e.pushImage("public/base", "v1", imageSpec{layers: [][]byte{layerOf(1)}})
	e.pushImage("team/app", "v1", imageSpec{layers: [][]byte{layerOf(2)}})
	e.pushImage("secret/x", "v1", imageSpec{layers: [][]byte{layerOf(3)}})
	tests := []struct {
		user    string
		repos   []string
		hidden  string
		navUser bool
	}{
		{"", []string{"public/base"}, "team/app", false},
		{"bob", []string{"public/base", "team/app"}, "secret/x", true},
		{"admin", []string{"public/base", "secret/x", "team/app"}, "", true},
	}
	for _, tt := range tests {
		t.Run("user "+tt.user, func(t *testing.T) {
			b := e.browser()
			var p htmlPage
			if tt.user == "" {
				p = b.get("/ui/")
				expectOne(t, p, "a#nav-login")
			} else {
				p = b.login(tt.user)
				if got := text(expectOne(t, p, "span#nav-user")); got != tt.user {
					t.Errorf("nav user %q", got)
				}
				expectOne(t, p, "form#logout")
			}
			want(t, p.texts("a.repo-link"), tt.repos)
			if tt.hidden != "" {
				for _, path := range []string{repoURL(tt.hidden), "/ui/r/" + tt.hidden + "/-/tag/v1"} {
					if got := b.get(path); got.status != http.StatusNotFound {
						t.Errorf("%s: %d, want 404 for a repository the user may not pull", path, got.status)
					}
				}
			}
		})
	}
}

func TestLoginSessionAndCSRF(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "tls"}[useTLS], func(t *testing.T) {
			e := newTestEnv(t, envOptions{auth: true, tls: useTLS})
			b := e.browser()
			form := b.get("/ui/login")
			expectOne(t, form, "form#login")
			token := form.csrf()
			for name, f := range map[string]url.Values{
				"no csrf":    {"username": {"alice"}, "password": {testPassword}},
				"wrong csrf": {"username": {"alice"}, "password": {testPassword}, "csrf": {"AAAA"}},
			} {
				if p := b.post("/ui/login", f); p.status != http.StatusForbidden || hasCookie(p, sessionCookie) {
					t.Errorf("%s: %d, want 403 and no session", name, p.status)
				}
			}
			p := b.post("/ui/login", url.Values{"username": {"alice"}, "password": {"wrong"}, "csrf": {token}})
			if p.status != http.StatusUnauthorized || len(p.all("p.flash.flash-error")) != 1 || hasCookie(p, sessionCookie) {
				t.Errorf("bad password: %d", p.status)
			}
			p = b.post("/ui/login", url.Values{"username": {"alice"}, "password": {testPassword}, "csrf": {token}})
			if p.status != http.StatusSeeOther {
				t.Fatalf("login: %d", p.status)
			}
			c := cookie(p, sessionCookie)
			if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != Prefix || c.Secure != useTLS || c.MaxAge != 3600 {
				t.Fatalf("session cookie flags: %+v", c)
			}
			home := b.get("/ui/")
			if len(home.all("span#nav-user")) != 1 || len(home.all("p.flash.flash-ok")) != 1 {
				t.Errorf("not signed in after login")
			}
			// The pre-session token does not work once signed in: tokens
			// are bound to the session.
			if p := b.post("/ui/logout", url.Values{"csrf": {token}}); p.status != http.StatusForbidden {
				t.Errorf("logout with a pre-session token: %d", p.status)
			}
			if p := b.post("/ui/logout", url.Values{"csrf": {home.csrf()}}); p.status != http.StatusSeeOther || cookie(p, sessionCookie).MaxAge >= 0 {
				t.Errorf("logout: %d", p.status)
			}
			if p := b.get("/ui/"); len(p.all("a#nav-login")) != 1 {
				t.Errorf("still signed in after logout")
			}
		})
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := newTestEnv(t, envOptions{auth: true})
	b := e.browser()
	form := b.get("/ui/login")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/login",
		strings.NewReader(url.Values{"username": {"alice"}, "password": {testPassword}, "csrf": {form.csrf()}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.status != http.StatusForbidden || hasCookie(p, sessionCookie) {
		t.Errorf("cross-site login: %d", p.status)
	}
}

func TestDelete(t *testing.T) {
	e := newTestEnv(t, envOptions{auth: true})
	e.pushImage("team/app", "v1", imageSpec{layers: [][]byte{layerOf(1)}})
	v2 := e.pushImage("team/app", "v2", imageSpec{layers: [][]byte{layerOf(2)}})
	e.pushImage("team/app", "release-1", imageSpec{layers: [][]byte{layerOf(3)}})
	tests := []struct {
		name, user, tag string
		link            bool // the tags table offers a delete link
		ok              bool
		msg             string
		digest          string // delete this manifest instead; tag is its tag
	}{
		{"refused for a user without delete", "bob", "v1", false, false, "delete access to repository team/app is not allowed", ""},
		{"allowed for an authorised user", "alice", "v1", true, true, "deleted team/app:v1", ""},
		{"immutable tag refused", "alice", "release-1", true, false, "immutable", ""},
		{"missing tag", "alice", "gone", true, false, "does not exist", ""},
		{"manifest by digest", "alice", "v2", true, true, "deleted team/app@" + v2.Digest.String(), v2.Digest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser()
			b.login(tt.user)
			repo := b.get(repoURL("team/app"))
			if got := len(repo.all("a.delete-link")) > 0; got != tt.link {
				t.Errorf("delete links shown: %v", got)
			}
			target := url.Values{"tag": {tt.tag}}
			if tt.digest != "" {
				target = url.Values{"digest": {tt.digest}}
			}
			confirm := b.get(deleteURL("team/app") + "?" + target.Encode())
			if tt.link {
				expectOne(t, confirm, "form#confirm-delete")
			} else if confirm.status != http.StatusForbidden {
				t.Errorf("confirmation page for a user without delete: %d", confirm.status)
			}
			if p := b.post(deleteURL("team/app"), target); p.status != http.StatusForbidden {
				t.Errorf("delete without csrf: %d", p.status)
			}
			target.Set("csrf", repo.csrf())
			p := b.post(deleteURL("team/app"), target)
			if p.status != http.StatusSeeOther || p.header.Get("Location") != repoURL("team/app") {
				t.Fatalf("delete: %d %q", p.status, p.header.Get("Location"))
			}
			after := b.get(repoURL("team/app"))
			sel := "p.flash.flash-error"
			if tt.ok {
				sel = "p.flash.flash-ok"
			}
			if f := after.texts(sel); len(f) != 1 || !strings.Contains(f[0], tt.msg) {
				t.Errorf("flash %s: %q, want %q (page: %q)", sel, f, tt.msg, after.texts("p.flash"))
			}
			if still := slices.Contains(after.texts("a.tag-link"), tt.tag); still != (tt.tag != "gone" && !tt.ok) {
				t.Errorf("tag %s present after delete: %v", tt.tag, still)
			}
		})
	}
}

func TestDeleteWithoutAuth(t *testing.T) {
	e := newTestEnv(t, envOptions{})
	e.pushImage("any/app", "v1", imageSpec{layers: [][]byte{layerOf(1)}})
	b := e.browser()
	repo := b.get(repoURL("any/app"))
	if len(repo.all("a.delete-link")) != 1 {
		t.Fatalf("no delete link without auth")
	}
	if p := b.post(deleteURL("any/app"), url.Values{"tag": {"v1"}, "csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("forged csrf: %d", p.status)
	}
	confirm := b.get(attr(repo.all("a.delete-link")[0], "href"))
	if p := b.post(deleteURL("any/app"), url.Values{"tag": {"v1"}, "csrf": {confirm.csrf()}}); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", p.status, p.body)
	}
	after := b.get(repoURL("any/app"))
	if len(after.all("tr.tag-row")) != 0 || len(after.all("p.flash.flash-ok")) != 1 {
		t.Errorf("tag not deleted: %q", after.texts("p.flash"))
	}
}

// fakeGC is a GCReports with a fixed report.
type fakeGC struct{ rep *registry.GCReport }

func (f fakeGC) LastGCReport(context.Context) (*registry.GCReport, error) { return f.rep, nil }

type fakeHealth struct{}

func (fakeHealth) Ready(context.Context) (bool, string) { return true, "ok" }

// fakeQueue is a WebhookQueue; nil answers with an error.
type fakeQueue map[string]int64

func (q fakeQueue) Depth(context.Context) (map[string]int64, error) {
	if q == nil {
		return nil, errors.New("redis down")
	}
	return q, nil
}

func TestStorageChartAndStatus(t *testing.T) {
	e := newTestEnv(t, envOptions{auth: true})
	now := time.Now()
	rep := &registry.GCReport{Started: now.Add(-time.Minute), Finished: now, DurationSeconds: 60, BlobsDeleted: 3, BytesReclaimed: 4096, KeptByPin: 2,
		Storage: &gc.Storage{UniqueBytes: 5000, Repositories: []gc.RepoStorage{
			{Repository: "team/app", Bytes: 4000, ExclusiveBytes: 1000, Blobs: 3, Manifests: 1},
			{Repository: "public/base", Bytes: 3000, ExclusiveBytes: 3000, Blobs: 2, Manifests: 1},
			{Repository: "secret/x", Bytes: 100, ExclusiveBytes: 100, Blobs: 1, Manifests: 1},
		}}}
	u, err := New(Options{Source: NewStoreSource(e.reg.Content()), API: e.reg, GC: fakeGC{rep}, Health: fakeHealth{}, Webhooks: fakeQueue{"ci": 3, "audit": 4}, Access: e.authz})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) htmlPage {
		rec := httptestRecorder(u, path)
		return rec
	}
	p := get("/ui/storage")
	var repos []string
	for _, n := range p.all("rect.repo-bar") {
		repos = append(repos, attr(n, "data-repo"))
	}
	// Anonymous: only the public repository by name; the rest are summed.
	want(t, repos, []string{"public/base"})
	if tbl := text(expectOne(t, p, "table#storage-table")); !strings.Contains(tbl, "2 other repositories") || strings.Contains(tbl, "secret/x") {
		t.Errorf("storage table: %q", tbl)
	}
	expectOne(t, p, "svg#storage-chart")
	s := get("/ui/status")
	for sel, w := range map[string]string{"section#gc-report": "4.0 KiB", "section#health": "ready", "section#webhooks": "7 deliveries waiting"} {
		if got := text(expectOne(t, s, sel)); !strings.Contains(got, w) {
			t.Errorf("%s: %q lacks %q", sel, got, w)
		}
	}
	if got := text(expectOne(t, s, "section#webhooks")); !strings.Contains(got, "audit4") || !strings.Contains(got, "ci3") {
		t.Errorf("webhook endpoints: %q", got)
	}
	u, err = New(Options{Source: NewStoreSource(e.reg.Content()), API: e.reg, Webhooks: fakeQueue(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(expectOne(t, get("/ui/status"), "section#webhooks")); !strings.Contains(got, "did not answer") {
		t.Errorf("webhooks whose queue fails: %q", got)
	}
	rep.Storage = nil
	if u, err = New(Options{Source: NewStoreSource(e.reg.Content()), API: e.reg, GC: fakeGC{rep}}); err != nil {
		t.Fatal(err)
	}
	if got := get("/ui/storage"); !strings.Contains(got.body, "recorded no storage figures") || len(got.all("svg#storage-chart")) != 0 {
		t.Errorf("a report without storage figures: %s", got.body)
	}
}
