package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/auth/scope"
)

// testPolicy: alice may pull and push team/*, anybody may pull public/*.
func testPolicy(_ context.Context, subject string, asked []scope.Scope) []scope.Scope {
	var out []scope.Scope
	for _, a := range asked {
		switch {
		case a.Type == "repository" && strings.HasPrefix(a.Name, "public/"):
			out = append(out, scope.Scope{Type: a.Type, Name: a.Name, Actions: []string{"pull"}})
		case a.Type == "repository" && strings.HasPrefix(a.Name, "team/") && subject == "alice":
			out = append(out, scope.Scope{Type: a.Type, Name: a.Name, Actions: []string{"pull", "push"}})
		}
	}
	return out
}

func testAuthenticate(_ context.Context, user, password string) error {
	if user == "alice" && password == "s3cret" {
		return nil
	}
	return errors.New("wrong user or password")
}

type endpoint struct {
	h    *Handler
	v    *Verifier
	logs *bytes.Buffer
}

// newEndpoint is a Handler whose log must never hold a password or a
// token: every test checks that at cleanup.
func newEndpoint(t *testing.T) endpoint {
	t.Helper()
	iss, v := newIssuerVerifier(t, issuerConfig(t, nil), time.Now)
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := endpoint{NewHandler(iss, AuthenticatorFunc(testAuthenticate), GranterFunc(testPolicy), log), v, logs}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "eyJ") {
			t.Errorf("the log holds a password or a token:\n%s", logs)
		}
		if !strings.Contains(logs.String(), "token") {
			t.Errorf("nothing logged")
		}
	})
	return e
}

func (e endpoint) get(t *testing.T, query url.Values, user, password string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/auth/token?"+query.Encode(), nil)
	if user != "" {
		r.SetBasicAuth(user, password)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func (e endpoint) post(t *testing.T, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// decode checks a 200 token answer and returns it with the verified access.
func (e endpoint) decode(t *testing.T, w *httptest.ResponseRecorder) (response, string, []scope.Scope) {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var resp response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Token == "" || resp.Token != resp.AccessToken || resp.ExpiresIn != int64(DefaultIssuerTTL/time.Second) {
		t.Fatalf("answer %+v", resp)
	}
	if _, err := time.Parse(time.RFC3339, resp.IssuedAt); err != nil {
		t.Fatalf("issued_at %q: %v", resp.IssuedAt, err)
	}
	sub, access, err := e.v.Verify(context.Background(), resp.Token)
	if err != nil {
		t.Fatalf("issued token refused: %v", err)
	}
	return resp, sub, access
}

func TestEndpointDockerFlow(t *testing.T) {
	e := newEndpoint(t)
	// docker login / pull: GET with Basic credentials and offline_token.
	w := e.get(t, url.Values{
		"service": {testService}, "client_id": {"docker"}, "offline_token": {"true"}, "account": {"alice"},
		"scope": {"repository:team/app:pull,push"},
	}, "alice", "s3cret")
	resp, sub, access := e.decode(t, w)
	if sub != "alice" || scope.Join(access) != "repository:team/app:pull,push" || resp.RefreshToken == "" {
		t.Fatalf("GET: sub %q access %v refresh %q", sub, access, resp.RefreshToken)
	}
	// Later pulls: POST with the refresh token (docker's identity token).
	w = e.post(t, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {resp.RefreshToken}, "service": {testService},
		"client_id": {"docker"}, "scope": {"repository:team/app:pull repository:team/lib:pull"},
	})
	resp, sub, access = e.decode(t, w)
	if sub != "alice" || scope.Join(access) != "repository:team/app:pull repository:team/lib:pull" || resp.RefreshToken != "" {
		t.Fatalf("refresh: sub %q access %v refresh %q", sub, access, resp.RefreshToken)
	}
}

func TestEndpointContainerdFlow(t *testing.T) {
	e := newEndpoint(t)
	w := e.post(t, url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"s3cret"}, "service": {testService},
		"client_id": {"containerd-client"}, "access_type": {"offline"},
		"scope": {"repository:team/app:pull", "repository:team/app:push"},
	})
	resp, sub, access := e.decode(t, w)
	if sub != "alice" || scope.Join(access) != "repository:team/app:pull,push" || resp.RefreshToken == "" {
		t.Fatalf("sub %q access %v refresh %q", sub, access, resp.RefreshToken)
	}
	if resp.Scope != "repository:team/app:pull,push" || resp.TokenType != "Bearer" {
		t.Fatalf("scope %q token_type %q", resp.Scope, resp.TokenType)
	}
}

func TestEndpointGrants(t *testing.T) {
	e := newEndpoint(t)
	for _, tc := range []struct {
		name       string
		user, pass string
		scope      []string
		wantSub    string
		want       string
	}{
		{"intersection of asked and allowed", "alice", "s3cret",
			[]string{"repository:team/app:pull,push,delete repository:other/x:pull", "registry:catalog:*"},
			"alice", "repository:team/app:pull,push"},
		{"anonymous pull of public", "", "", []string{"repository:public/x:pull,push"}, "", "repository:public/x:pull"},
		{"anonymous gets nothing private", "", "", []string{"repository:team/app:pull"}, "", ""},
		{"no scope asked", "alice", "s3cret", nil, "alice", ""},
		{"host:port in the name", "alice", "s3cret", []string{"repository:team/localhost:5000/x:push"}, "alice", "repository:team/localhost:5000/x:push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, sub, access := e.decode(t, e.get(t, url.Values{"service": {testService}, "scope": tc.scope}, tc.user, tc.pass))
			if sub != tc.wantSub || scope.Join(access) != tc.want {
				t.Fatalf("sub %q access %q, want %q %q", sub, scope.Join(access), tc.wantSub, tc.want)
			}
		})
	}
}

// refusal is a request the endpoint must refuse, with its OAuth2 error.
type refusal struct {
	name   string
	do     func() *httptest.ResponseRecorder
	status int
	code   string
}

func refusals(t *testing.T, e endpoint) []refusal {
	access, err := e.h.issuer.Issue("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	pw := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"s3cret"}, "client_id": {"c"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	return []refusal{
		{"GET wrong password", func() *httptest.ResponseRecorder { return e.get(t, nil, "alice", "nope") }, 401, "invalid_grant"},
		{"GET unknown user", func() *httptest.ResponseRecorder { return e.get(t, nil, "mallory", "s3cret") }, 401, "invalid_grant"},
		{"POST wrong password", func() *httptest.ResponseRecorder { return e.post(t, pw("password", "nope")) }, 401, "invalid_grant"},
		{"POST bad refresh token", func() *httptest.ResponseRecorder {
			return e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"abc"}, "client_id": {"c"}})
		}, 401, "invalid_grant"},
		{"POST access token as refresh token", func() *httptest.ResponseRecorder {
			return e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {access.Token}, "client_id": {"c"}})
		}, 401, "invalid_grant"},
		{"unknown grant_type", func() *httptest.ResponseRecorder { return e.post(t, pw("grant_type", "client_credentials")) }, 400, "unsupported_grant_type"},
		{"missing grant_type", func() *httptest.ResponseRecorder { return e.post(t, pw("grant_type", "")) }, 400, "invalid_request"},
		{"missing client_id", func() *httptest.ResponseRecorder { return e.post(t, pw("client_id", "")) }, 400, "invalid_request"},
		{"missing password", func() *httptest.ResponseRecorder { return e.post(t, pw("password", "")) }, 400, "invalid_request"},
		{"malformed scope", func() *httptest.ResponseRecorder { return e.post(t, pw("scope", "repository:app")) }, 400, "invalid_scope"},
		{"another service", func() *httptest.ResponseRecorder { return e.post(t, pw("service", "other.registry")) }, 400, "invalid_request"},
		{"offline_token not a boolean", func() *httptest.ResponseRecorder {
			return e.get(t, url.Values{"offline_token": {"maybe"}}, "alice", "s3cret")
		}, 400, "invalid_request"},
		{"account of another user", func() *httptest.ResponseRecorder {
			return e.get(t, url.Values{"account": {"bob"}}, "alice", "s3cret")
		}, 400, "invalid_request"},
		{"too many scopes", func() *httptest.ResponseRecorder {
			var s []string
			for i := range maxScopes + 1 {
				s = append(s, "repository:r"+strings.Repeat("x", i)+":pull")
			}
			return e.get(t, url.Values{"scope": s}, "alice", "s3cret")
		}, 400, "invalid_scope"},
		{"Bearer to the token endpoint", func() *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodGet, "/auth/token", nil)
			r.Header.Set("Authorization", "Bearer abc")
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			return w
		}, 400, "invalid_request"},
		{"POST JSON body", func() *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(`{"grant_type":"password"}`))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			return w
		}, 400, "invalid_request"},
		{"POST oversized form", func() *httptest.ResponseRecorder { return e.post(t, pw("scope", strings.Repeat("a", maxFormSize))) }, 413, "invalid_request"},
		{"PUT", func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, httptest.NewRequest(http.MethodPut, "/auth/token", nil))
			return w
		}, 405, "invalid_request"},
	}
}

func TestEndpointRefusals(t *testing.T) {
	e := newEndpoint(t)
	for _, tc := range refusals(t, e) {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.do()
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("status %d, body %q: %v", w.Code, w.Body, err)
			}
			if w.Code != tc.status || body["error"] != tc.code || body["error_description"] == "" {
				t.Fatalf("status %d body %v, want %d %s", w.Code, body, tc.status, tc.code)
			}
			wantChallenge := ""
			if tc.status == 401 {
				wantChallenge = `Basic realm="registry.test"`
			}
			if got := w.Header().Get("WWW-Authenticate"); got != wantChallenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, wantChallenge)
			}
			if tc.status == 405 && w.Header().Get("Allow") != "GET, POST" {
				t.Fatalf("Allow %q", w.Header().Get("Allow"))
			}
			if strings.Contains(w.Body.String(), "s3cret") {
				t.Fatal("the answer echoes the password")
			}
		})
	}
}
