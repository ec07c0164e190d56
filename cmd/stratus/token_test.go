package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTokenConfig(t *testing.T) {
	htpasswd := writeConfig(t, "") // an empty htpasswd file: no users
	for _, tc := range []struct {
		name string
		env  []string
		sets []string
		want []string // error substrings; none: valid
	}{
		{"built-in issuer from the environment", []string{
			"STRATUS_AUTH_HTPASSWD_PATH=" + htpasswd,
			"STRATUS_AUTH_TOKEN_REALM=https://r.example/auth/token",
			"STRATUS_AUTH_TOKEN_SERVICE=r.example",
			"STRATUS_AUTH_TOKEN_ISSUER_ENABLED=true",
			"STRATUS_AUTH_TOKEN_LEEWAY=0s",
		}, nil, nil},
		{"external issuer", nil, []string{
			"auth.token.realm=https://idp.example/token", "auth.token.service=r.example",
			"auth.token.issuer=https://idp.example", "auth.token.jwks_url=https://idp.example/certs",
		}, nil},
		{"incomplete section", nil, []string{"auth.token.service=r.example", "auth.token.leeway=2m"}, []string{
			"auth.token.realm: required", "auth.token.issuer: required", "auth.token.rootcertbundle: no trusted keys", "auth.token.leeway: must be between",
		}},
		{"built-in issuer without users", nil, []string{
			"auth.token.realm=https://r.example/auth/token", "auth.token.service=r.example", "auth.token.issuer_enabled=true",
		}, []string{"auth.token.issuer_enabled: needs auth.htpasswd.path"}},
		{"htpasswd unused by an external issuer", nil, []string{
			"auth.htpasswd.path=" + htpasswd, "auth.token.realm=https://idp.example/token", "auth.token.service=r.example",
			"auth.token.issuer=https://idp.example", "auth.token.jwks=/etc/jwks.json",
		}, []string{"auth.htpasswd.path: with auth.token"}},
		{"replicas without a shared key", nil, []string{
			"auth.htpasswd.path=" + htpasswd, "auth.token.realm=https://r.example/auth/token", "auth.token.service=r.example",
			"auth.token.issuer_enabled=true", "redis.addrs=127.0.0.1:6379",
		}, []string{"auth.token.issuer_key: required when redis.addrs is set"}},
		{"explicit empty issuer ttl", nil, []string{
			"auth.htpasswd.path=" + htpasswd, "auth.token.realm=https://r.example/auth/token", "auth.token.service=r.example",
			"auth.token.issuer_enabled=true", "auth.token.issuer_ttl=0s",
		}, []string{"auth.token.issuer_ttl: a zero or empty value is not valid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig("", tc.env, tc.sets)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !cfg.Auth.enabled() || !cfg.Auth.Token.Enabled() {
					t.Fatal("auth.token not enabled")
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestTokenEndpointMount(t *testing.T) {
	cfg, err := loadConfig("", nil, []string{
		"auth.htpasswd.path=" + writeConfig(t, ""), "auth.token.realm=http://127.0.0.1/auth/token",
		"auth.token.service=svc", "auth.token.issuer_enabled=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sec, err := openSecurity(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := sec.wrap(next)
	for _, tc := range []struct {
		path   string
		status int
	}{
		// An anonymous token request is answered by the endpoint itself,
		// never challenged by the authorizer.
		{"/auth/token?service=svc", http.StatusOK},
		{"/auth/token/x", http.StatusTeapot},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if w.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.path, w.Code, w.Body, tc.status)
		}
	}
}
