package token

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/stratus-registry/stratus/auth/scope"
)

// FuzzVerify feeds mutations of real tokens (good, forged, x5c, jwk) to
// Verify: it must never panic, every refusal must wrap ErrInvalidToken, and
// nothing it accepts may be signed with an algorithm outside the list.
func FuzzVerify(f *testing.F) {
	fx := newVerifierFixture(f)
	pull := scope.Scope{Type: "repository", Name: "a/b", Actions: []string{"pull"}}
	attacker := newECKey(f, "")
	for _, seed := range []string{
		sign(f, fx.ec, goodClaims("alice", pull), nil),
		sign(f, fx.rsa, goodClaims("alice", pull), nil),
		sign(f, fx.ed, goodClaims("alice", pull), nil),
		sign(f, fx.chainKey, goodClaims("alice", pull), map[string]any{"x5c": x5c(fx.leaf, fx.root.cert)}),
		sign(f, attacker, goodClaims("alice", pull), map[string]any{"jwk": jose.JSONWebKey{Key: attacker.priv.Public()}}),
		sign(f, fx.ec, goodClaims("alice", pull), map[string]any{"typ": refreshTyp}),
		"eyJhbGciOiJub25lIn0.e30.",
		"",
		"a.b.c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, _, err := fx.v.Verify(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refusal without ErrInvalidToken: %v", err)
			}
			return
		}
		tok, _, perr := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
		if perr != nil {
			t.Fatalf("accepted a token that does not parse: %v", perr)
		}
		if alg, _ := tok.Header["alg"].(string); !slices.Contains(validMethods, alg) {
			t.Fatalf("accepted alg %q", alg)
		}
	})
}

// FuzzParseRequest feeds arbitrary query strings, forms and Authorization
// headers to the endpoint's request parser: it must never panic, refuse
// with a 4xx OAuth2 error, and accept only bounded, non-empty scopes.
func FuzzParseRequest(f *testing.F) {
	f.Add(true, "service=registry.test&scope=repository%3Aa%3Apull&offline_token=true&client_id=docker&account=alice", "", "Basic YWxpY2U6czNjcmV0")
	f.Add(false, "", "grant_type=password&username=alice&password=x&client_id=c&scope=repository%3Ahost%3A5000%2Fa%3Apull%2Cpush+registry%3Acatalog%3A*", "")
	f.Add(false, "", "grant_type=refresh_token&refresh_token=abc&client_id=c&service=registry.test", "")
	f.Add(true, "scope=repository:a:&scope=%zz", "", "Basic !!!")
	f.Add(false, "", "grant_type=password&scope=repository%3A%22%3Apull", "")
	f.Fuzz(func(t *testing.T, get bool, query, body, authz string) {
		var r *http.Request
		if get {
			r = httptest.NewRequest(http.MethodGet, "/auth/token", nil)
			r.URL.RawQuery = query
		} else {
			r = httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		req, err := parseRequest(r, testService)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status < 400 || re.status > 499 || re.code == "" {
				t.Fatalf("refusal %v is not a 4xx OAuth2 error", err)
			}
			return
		}
		if len(req.scopes) > maxScopes {
			t.Fatalf("%d scopes", len(req.scopes))
		}
		for _, s := range req.scopes {
			if len(s.Actions) == 0 || s.Type == "" || s.Name == "" {
				t.Fatalf("empty scope %+v", s)
			}
		}
		switch req.grant {
		case grantPassword, grantBasic:
			if req.user == "" {
				t.Fatal("password grant without a user")
			}
		case grantRefresh:
			if req.refreshToken == "" {
				t.Fatal("refresh grant without a token")
			}
		case grantAnonymous:
			if req.user != "" || req.password != "" {
				t.Fatal("anonymous with credentials")
			}
		default:
			t.Fatalf("grant %q accepted", req.grant)
		}
	})
}
