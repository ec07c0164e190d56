package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/auth/policy"
	"github.com/stratus-registry/stratus/auth/scope"
	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// passwords is a PasswordChecker over a map (htpasswd has its own tests).
type passwords map[string]string

func (p passwords) Authenticate(_ context.Context, user, password string) error {
	if pw, ok := p[user]; ok && pw == password {
		return nil
	}
	return errors.New("bad credentials")
}

// tokens is a TokenVerifier over a fixed set of tokens.
type tokens map[string]struct {
	subject string
	access  string
}

func (tk tokens) Verify(_ context.Context, raw string) (string, []scope.Scope, error) {
	t, ok := tk[raw]
	if !ok {
		return "", nil, errors.New("signature does not verify")
	}
	access, err := scope.ParseAll(t.access)
	return t.subject, access, err
}

var users = passwords{"alice": "alice-pw-S3cret", "bob": "bob-pw-S3cret", "carol": "carol-pw-S3cret", "olga": "olga-pw-S3cret"}

func orgPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.New(policy.Config{
		Groups: map[string][]string{"team-a": {"alice", "bob"}, "ops": {"olga"}},
		Rules: []policy.Rule{
			{Repository: "public/**", Anonymous: true, Users: []string{policy.Anyone}, Actions: []string{"pull"}},
			{Repository: "public/**", Groups: []string{"ops"}, Actions: []string{"*"}},
			{Repository: "team-a/**", Groups: []string{"team-a"}, Actions: []string{"pull", "push", "delete"}},
			{Repository: "~/**", Users: []string{policy.Anyone}, Actions: []string{"*"}},
			{Catalog: true, Users: []string{policy.Anyone}, Actions: []string{"*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer collects every log line of a test server, for the secrets test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	t    *testing.T
	srv  *httptest.Server
	logs *logBuffer
	host string
}

// newTestServer runs a registry behind the same chain serve builds:
// access log, authentication, write audit, registry.
func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger, opts.Auditor = logger, NewAuditor(logger)
	authz, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	reg, err := registry.New(context.Background(), registry.Config{}, registry.Deps{
		Storage: inmemory.New(), Locking: locks, Logger: logger, Authorizer: authz,
	})
	if err != nil {
		t.Fatal(err)
	}
	route := func(r *http.Request) httpmw.Route {
		tmpl, repo, ref := registry.RouteInfo(r.URL.EscapedPath())
		return httpmw.Route{Template: tmpl, Repository: repo, Reference: ref}
	}
	h := httpmw.Observe(httpmw.Options{Logger: logger, Route: route})(authz.Middleware(opts.Auditor.Writes(route)(reg)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &testServer{t: t, srv: srv, logs: logs, host: u.Host}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request with an Authorization value ("" for none).
func (s *testServer) do(method, path, authorization string) answer {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	resp.Header.Del("Date") // the only header allowed to differ between two answers
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func (s *testServer) push(repo, user string) v1.Image {
	s.t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		s.t.Fatal(err)
	}
	ref, err := name.ParseReference(s.host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: users[user]})); err != nil {
		s.t.Fatalf("%s pushes %s: %v", user, repo, err)
	}
	return img
}

func basicOf(user string) string { return basic(user, users[user]) }

func TestBasicModeOrganisation(t *testing.T) {
	s := newTestServer(t, Options{Realm: "Stratus", Passwords: users, Policy: orgPolicy(t)})
	s.push("team-a/app", "alice")
	s.push("public/tool", "olga")
	s.push("bob/own", "bob")
	challenge := `Basic realm="Stratus"`

	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		challenged               bool
	}{
		{"/v2/ anonymous", "GET", "/v2/", "", 401, true},
		{"/v2/ good credentials", "GET", "/v2/", basicOf("carol"), 200, false},
		{"/v2/ wrong password", "GET", "/v2/", basic("carol", "nope"), 401, true},
		{"/v2/ unknown user", "GET", "/v2/", basic("mallory", "x"), 401, true},
		{"anonymous pull of public", "GET", "/v2/public/tool/manifests/v1", "", 200, false},
		{"anonymous push to public", "POST", "/v2/public/tool/blobs/uploads/", "", 401, true},
		{"anonymous pull of private", "GET", "/v2/team-a/app/manifests/v1", "", 401, true},
		{"bad password on public", "GET", "/v2/public/tool/manifests/v1", basic("carol", "nope"), 401, true},
		{"member pulls", "GET", "/v2/team-a/app/manifests/v1", basicOf("bob"), 200, false},
		{"member starts a push", "POST", "/v2/team-a/app/blobs/uploads/", basicOf("bob"), 202, false},
		{"non-member pulls", "GET", "/v2/team-a/app/manifests/v1", basicOf("carol"), 403, false},
		{"non-member lists tags", "GET", "/v2/team-a/app/tags/list", basicOf("carol"), 403, false},
		{"member lists tags", "GET", "/v2/team-a/app/tags/list", basicOf("alice"), 200, false},
		{"personal namespace", "POST", "/v2/carol/x/blobs/uploads/", basicOf("carol"), 202, false},
		{"someone else's namespace", "GET", "/v2/bob/own/manifests/v1", basicOf("carol"), 403, false},
		{"pull-only on public refuses delete", "DELETE", "/v2/public/tool/manifests/v1", basicOf("carol"), 403, false},
		{"catalog anonymous", "GET", "/v2/_catalog", "", 401, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.do(tc.method, tc.path, tc.auth)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if got := a.header.Get("WWW-Authenticate"); (got == challenge) != tc.challenged {
				t.Errorf("WWW-Authenticate %q (challenge expected: %v)", got, tc.challenged)
			}
			wantCode := map[int]string{401: `"code":"UNAUTHORIZED"`, 403: `"code":"DENIED"`}[a.status]
			if wantCode != "" && !strings.Contains(a.body, wantCode) {
				t.Errorf("body %s lacks %s", a.body, wantCode)
			}
		})
	}
}

// TestMissingAndForbiddenLookAlike: a caller who may not see a repository
// gets, byte for byte, the answer it gets for one that does not exist.
func TestMissingAndForbiddenLookAlike(t *testing.T) {
	s := newTestServer(t, Options{Realm: "Stratus", Passwords: users, Policy: orgPolicy(t)})
	img := s.push("team-a/app", "alice")
	dg, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	for _, who := range []string{"", basicOf("carol"), basic("carol", "wrong")} {
		for _, tc := range []struct{ method, existing, missing string }{
			{"GET", "/v2/team-a/app/manifests/v1", "/v2/team-a/zzz/manifests/v1"},
			{"HEAD", "/v2/team-a/app/manifests/" + dg.String(), "/v2/team-a/zzz/manifests/" + dg.String()},
			{"GET", "/v2/team-a/app/blobs/" + ld.String(), "/v2/team-a/zzz/blobs/" + ld.String()},
			{"GET", "/v2/team-a/app/tags/list", "/v2/team-a/zzz/tags/list"},
			{"GET", "/v2/team-a/app/referrers/" + dg.String(), "/v2/team-a/zzz/referrers/" + dg.String()},
			{"DELETE", "/v2/team-a/app/manifests/v1", "/v2/team-a/zzz/manifests/v1"},
			{"PUT", "/v2/team-a/app/manifests/v2", "/v2/team-a/zzz/manifests/v2"},
		} {
			existing, missing := s.do(tc.method, tc.existing, who), s.do(tc.method, tc.missing, who)
			if existing.status < 400 {
				t.Fatalf("%s %s as %q: allowed (%d)", tc.method, tc.existing, who, existing.status)
			}
			// The message names the repository asked for (both names have
			// the same length); with the name swapped, the answers must be
			// identical, Content-Length included.
			existing.body = strings.ReplaceAll(existing.body, "team-a/app", "team-a/zzz")
			if !reflect.DeepEqual(existing, missing) {
				t.Errorf("%s as %q:\n existing %+v\n missing  %+v", tc.method, who, existing, missing)
			}
		}
	}
}

func TestCatalogIsFiltered(t *testing.T) {
	s := newTestServer(t, Options{Realm: "Stratus", Passwords: users, Policy: orgPolicy(t)})
	for _, r := range []struct{ repo, user string }{
		{"alice/one", "alice"}, {"bob/own", "bob"}, {"public/a", "olga"}, {"public/b", "olga"},
		{"team-a/app", "alice"}, {"team-a/lib", "bob"}, {"zeta/z", ""},
	} {
		if r.user != "" {
			s.push(r.repo, r.user)
		}
	}
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"carol", []string{"public/a", "public/b"}},
		{"alice", []string{"alice/one", "public/a", "public/b", "team-a/app", "team-a/lib"}},
		{"olga", []string{"public/a", "public/b"}},
	} {
		// Page by one and by two: every page is full until the last, and
		// the Link is followed to the end.
		for _, n := range []string{"1", "2", "10"} {
			var got []string
			next := "/v2/_catalog?n=" + n
			for pages := 0; next != ""; pages++ {
				if pages > 10 {
					t.Fatal("the Link never ends")
				}
				a := s.do("GET", next, basicOf(tc.user))
				if a.status != 200 {
					t.Fatalf("%s: %d %s", tc.user, a.status, a.body)
				}
				var page []string
				if i := strings.Index(a.body, "["); i >= 0 {
					for _, q := range strings.Split(strings.Trim(a.body[i:], "[]}\n"), ",") {
						if q = strings.Trim(q, `"`); q != "" {
							page = append(page, q)
						}
					}
				}
				next = ""
				if link := a.header.Get("Link"); link != "" {
					next = strings.TrimPrefix(strings.Split(link, ">")[0], "<")
					if want := n; len(page) != atoi(want) {
						t.Errorf("%s n=%s: page %v is not full but has a Link", tc.user, n, page)
					}
				}
				got = append(got, page...)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s n=%s: catalog %v, want %v", tc.user, n, got, tc.want)
			}
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestMountNeedsPullOnTheSource: a mount from a repository the caller may
// not pull falls back to an upload, as if the blob were not there.
func TestMountNeedsPullOnTheSource(t *testing.T) {
	s := newTestServer(t, Options{Realm: "Stratus", Passwords: users, Policy: orgPolicy(t)})
	img := s.push("team-a/app", "alice")
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	mount := "/blobs/uploads/?mount=" + ld.String() + "&from=team-a/app"
	if a := s.do("POST", "/v2/carol/stolen"+mount, basicOf("carol")); a.status != 202 {
		t.Errorf("carol mounting from team-a: %d %s, want 202 (no mount)", a.status, a.body)
	}
	if a := s.do("GET", "/v2/carol/stolen/blobs/"+ld.String(), basicOf("carol")); a.status != 404 {
		t.Errorf("carol reads the blob she could not mount: %d", a.status)
	}
	if a := s.do("POST", "/v2/alice/copy"+mount, basicOf("alice")); a.status != 201 {
		t.Errorf("alice mounting from team-a: %d %s, want 201", a.status, a.body)
	}
}

func TestTokenMode(t *testing.T) {
	tk := tokens{
		"tok-pull-a":    {"alice", "repository:team-a/app:pull"},
		"tok-push-a":    {"alice", "repository:team-a/app:pull,push"},
		"tok-catalog":   {"alice", "registry:catalog:*"},
		"tok-b":         {"alice", "repository:team-b/app:pull"},
		"tok-nothing-1": {"alice", ""},
	}
	s := newTestServer(t, Options{Realm: "https://auth.example/token", Service: "stratus.example", Tokens: tk, Passwords: users, Policy: orgPolicy(t)})
	bearer := func(tok string) string { return "Bearer " + tok }
	const pre = `Bearer realm="https://auth.example/token",service="stratus.example"`
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		challenge                string
	}{
		{"/v2/ anonymous", "GET", "/v2/", "", 401, pre},
		{"/v2/ token without access", "GET", "/v2/", bearer("tok-nothing-1"), 200, ""},
		{"/v2/ bad token", "GET", "/v2/", bearer("forged"), 401, pre + `,error="invalid_token"`},
		{"anonymous pull of private", "GET", "/v2/team-a/app/tags/list", "", 401, pre + `,scope="repository:team-a/app:pull"`},
		{"anonymous pull of public (policy)", "GET", "/v2/public/x/tags/list", "", 404, ""},
		{"Basic sent to a token registry", "GET", "/v2/team-a/app/tags/list", basicOf("alice"), 401, pre + `,scope="repository:team-a/app:pull"`},
		{"pull token pulls", "GET", "/v2/team-a/app/tags/list", bearer("tok-pull-a"), 404, ""},
		{"pull token pushes", "POST", "/v2/team-a/app/blobs/uploads/", bearer("tok-pull-a"), 401,
			pre + `,scope="repository:team-a/app:pull,push",error="insufficient_scope"`},
		{"push token pushes", "POST", "/v2/team-a/app/blobs/uploads/", bearer("tok-push-a"), 202, ""},
		{"push token deletes", "DELETE", "/v2/team-a/app/manifests/v1", bearer("tok-push-a"), 401,
			pre + `,scope="repository:team-a/app:delete",error="insufficient_scope"`},
		{"token for B used on A", "GET", "/v2/team-a/app/tags/list", bearer("tok-b"), 401,
			pre + `,scope="repository:team-a/app:pull",error="insufficient_scope"`},
		{"catalog without catalog scope", "GET", "/v2/_catalog", bearer("tok-pull-a"), 401,
			pre + `,scope="registry:catalog:*",error="insufficient_scope"`},
		{"catalog with catalog scope", "GET", "/v2/_catalog", bearer("tok-catalog"), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.do(tc.method, tc.path, tc.auth)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if got := a.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate:\n got  %s\n want %s", got, tc.challenge)
			}
		})
	}
}

// TestLogsHoldNoSecrets runs a whole Basic and bearer flow, failures
// included, and greps every log line (access, audit, debug) for the
// passwords, the Authorization values and the tokens.
func TestLogsHoldNoSecrets(t *testing.T) {
	const token = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LXRva2VuLWJvZHk.c2lnbmF0dXJl"
	basicMode := newTestServer(t, Options{Realm: "Stratus", Passwords: users, Policy: orgPolicy(t)})
	basicMode.push("team-a/app", "alice")
	basicMode.do("GET", "/v2/", basic("alice", "alice-wrong-S3cret"))
	basicMode.do("GET", "/v2/team-a/app/manifests/v1", basicOf("carol"))
	basicMode.do("GET", "/v2/team-a/app/manifests/v1?access_token="+token, "")
	tokenMode := newTestServer(t, Options{Realm: "https://a/t", Service: "s", Tokens: tokens{token: {"alice", "repository:team-a/app:pull"}}})
	tokenMode.do("GET", "/v2/team-a/app/tags/list", "Bearer "+token)
	tokenMode.do("POST", "/v2/team-a/app/blobs/uploads/", "Bearer "+token)
	tokenMode.do("GET", "/v2/", "Bearer "+token+"x")

	logs := basicMode.logs.String() + tokenMode.logs.String()
	secrets := []string{token, "alice-wrong-S3cret", base64.StdEncoding.EncodeToString([]byte("alice:alice-wrong-S3cret"))}
	for u, pw := range users {
		secrets = append(secrets, pw, strings.TrimPrefix(basic(u, pw), "Basic "))
	}
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("a log line holds the secret %q", sec)
		}
	}
	// The flow was logged: the audit lines are there, with their actor.
	for _, want := range []string{
		`"audit":true`, `"action":"tag","repo":"team-a/app"`, `"actor":"alice"`,
		`"action":"login_failed"`, `"user":"alice"`, `"action":"denied"`, `"actor":"carol"`,
		`"action":"push_blob"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if !strings.Contains(basicMode.logs.String(), `"msg":"access"`) || !strings.Contains(basicMode.logs.String(), `"actor":"carol"`) {
		t.Error("the access log has no actor")
	}
}
