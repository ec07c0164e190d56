package integration

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var (
	repoLinkRE = regexp.MustCompile(`<a class="repo-link" href="[^"]*">([^<]*)</a>`)
	csrfRE     = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
)

// uiBrowser is a cookie-keeping HTTPS client of the web UI that does not
// follow redirects.
type uiBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newUIBrowser(t *testing.T, setup *authSetup, srv *server) *uiBrowser {
	jar, _ := cookiejar.New(nil)
	c := setup.ca.client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &uiBrowser{t: t, base: "https://" + srv.Addr, c: c}
}

func (b *uiBrowser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(form.Encode()))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *uiBrowser) csrf(path string) string {
	b.t.Helper()
	_, body := b.do(http.MethodGet, path, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no csrf token on %s", path)
	}
	return m[1]
}

func (b *uiBrowser) repos() []string {
	_, body := b.do(http.MethodGet, "/ui/", nil)
	var out []string
	for _, m := range repoLinkRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestUIServe: the web UI of a real `stratus serve` over TLS with htpasswd
// and a policy: visibility per user, a Secure session cookie, and a
// delete through the UI that the registry, its audit log and the API see.
func TestUIServe(t *testing.T) {
	setup := newAuthSetup(t, orgPolicyYAML)
	srv := setup.start(t)
	seedImage(t, setup.ca, srv, "public/app:v1", "alice")
	seedImage(t, setup.ca, srv, "team-a/app:v1", "alice")
	seedImage(t, setup.ca, srv, "team-a/app:v2", "alice")

	anon := newUIBrowser(t, setup, srv)
	if got := anon.repos(); !slices.Equal(got, []string{"public/app"}) {
		t.Errorf("anonymous sees %q, want only public/app", got)
	}
	users := map[string]*uiBrowser{}
	for _, user := range []string{"bob", "carol"} {
		b := newUIBrowser(t, setup, srv)
		res, _ := b.do(http.MethodPost, "/ui/login", url.Values{"username": {user}, "password": {authUsers[user]}, "csrf": {b.csrf("/ui/login")}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %s: %d", user, res.StatusCode)
		}
		var session *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "stratus_ui_session" {
				session = c
			}
		}
		if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
			t.Fatalf("session cookie over TLS: %+v", session)
		}
		users[user] = b
	}
	if got := users["bob"].repos(); !slices.Contains(got, "team-a/app") || !slices.Contains(got, "public/app") {
		t.Errorf("bob (team-a) sees %q", got)
	}
	if got := users["carol"].repos(); slices.Contains(got, "team-a/app") {
		t.Errorf("carol sees team-a/app: %q", got)
	}

	// carol may not delete in team-a: refused, nothing deleted.
	carol := users["carol"]
	res, _ := carol.do(http.MethodPost, "/ui/r/team-a/app/-/delete", url.Values{"tag": {"v1"}, "csrf": {carol.csrf("/ui/")}})
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("carol deletes in a repository she cannot see: %d, want 404", res.StatusCode)
	}
	bob := users["bob"]
	token := bob.csrf("/ui/r/team-a/app/-/delete?tag=v1")
	if res, _ = bob.do(http.MethodPost, "/ui/r/team-a/app/-/delete", url.Values{"tag": {"v1"}, "csrf": {token}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's delete: %d", res.StatusCode)
	}
	if _, body := bob.do(http.MethodGet, "/ui/r/team-a/app/", nil); !strings.Contains(body, "flash-ok") || strings.Contains(body, ">v1</a>") {
		t.Errorf("after the delete the tags page shows no success or still lists v1")
	}
	tags, err := remote.List(tlsRef(t, srv, "team-a/app").Context(), ggcrOpts(setup.ca, "alice")...)
	if err != nil || !slices.Equal(tags, []string{"v2"}) {
		t.Errorf("tags through the API after the UI delete: %q %v", tags, err)
	}
	if log := srv.Log(); !regexp.MustCompile(`audit.*actor=bob.*action=delete.*repo=team-a/app.*tag=v1.*result=ok`).MatchString(log) {
		t.Errorf("no audit line for bob's delete:\n%s", tail(log, 20))
	}
}
