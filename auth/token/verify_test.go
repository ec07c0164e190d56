package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/stratus-registry/stratus/auth/scope"
)

// verifierFixture is a Verifier trusting a JWKS file (ec, rsa, ed) and a
// root bundle (root), at testNow.
type verifierFixture struct {
	v            *Verifier
	ec, rsa, ed  testKey
	root, other  testCA
	chainKey     testKey
	leaf         *x509.Certificate
	leafNoSign   *x509.Certificate
	otherLeaf    *x509.Certificate
	rootKeyAsKID testKey // signs with the root certificate's own key
}

func newVerifierFixture(t testing.TB) *verifierFixture {
	t.Helper()
	f := &verifierFixture{
		ec: newECKey(t, "ec1"), rsa: newRSAKey(t, "rsa1"), ed: newEdKey(t, "ed1"),
		root: newCA(t, "token root"), other: newCA(t, "some other root"),
		chainKey: newECKey(t, ""),
	}
	f.leaf = f.root.issue(t, f.chainKey, x509.KeyUsageDigitalSignature)
	f.leafNoSign = f.root.issue(t, f.chainKey, x509.KeyUsageKeyEncipherment)
	f.otherLeaf = f.other.issue(t, f.chainKey, x509.KeyUsageDigitalSignature)
	id, err := libtrustKeyID(f.root.cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f.rootKeyAsKID = testKey{f.root.key, jwt.SigningMethodES256, id}
	cfg := Config{
		Service: testService, Issuer: testIssuer,
		JWKS:           writeFile(t, "jwks.json", jwks(t, f.ec, f.rsa, f.ed)),
		RootCertBundle: writeFile(t, "roots.pem", certPEM(f.root.cert)),
	}
	cfg.SetDefaults()
	f.v, err = NewVerifier(context.Background(), cfg, VerifierOptions{Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerify(t *testing.T) {
	f := newVerifierFixture(t)
	pull := scope.Scope{Type: "repository", Name: "team/app", Actions: []string{"pull"}}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := goodClaims("alice", pull)
		mod(c)
		return c
	}
	attacker := newECKey(t, "")
	attackerJWK := jose.JSONWebKey{Key: attacker.priv.Public()}
	trustedJWK := jose.JSONWebKey{Key: f.ec.priv.Public()}
	for _, tc := range []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"ES256 by kid", sign(t, f.ec, goodClaims("alice", pull), nil), nil},
		{"RS256 by kid", sign(t, f.rsa, goodClaims("alice", pull), nil), nil},
		{"EdDSA by kid", sign(t, f.ed, goodClaims("alice", pull), nil), nil},
		{"kid by RFC 7638 thumbprint", sign(t, testKey{f.ec.priv, f.ec.method, mustThumb(t, f.ec)}, goodClaims("alice", pull), nil), nil},
		{"aud as a list", sign(t, f.ec, with(func(c jwt.MapClaims) { c["aud"] = []string{"other", testService} }), nil), nil},
		{"expired within leeway", sign(t, f.ec, with(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-30 * time.Second).Unix() }), nil), nil},
		{"expired", sign(t, f.ec, with(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-2 * time.Minute).Unix() }), nil), ErrExpired},
		{"no exp", sign(t, f.ec, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil), ErrMalformedClaims},
		{"not yet valid", sign(t, f.ec, with(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(2 * time.Minute).Unix() }), nil), ErrNotYetValid},
		{"wrong audience", sign(t, f.ec, with(func(c jwt.MapClaims) { c["aud"] = "other.registry" }), nil), ErrWrongAudience},
		{"no audience", sign(t, f.ec, with(func(c jwt.MapClaims) { delete(c, "aud") }), nil), ErrMalformedClaims},
		{"wrong issuer", sign(t, f.ec, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), nil), ErrWrongIssuer},
		{"bad signature", sign(t, testKey{newECKey(t, "").priv, jwt.SigningMethodES256, "ec1"}, goodClaims("alice", pull), nil), ErrBadSignature},
		{"alg none", noneToken(t, goodClaims("alice", pull)), ErrAlgorithm},
		{"HS256 keyed with the public key", hmacWithPublicKey(t, f.rsa, goodClaims("alice", pull)), ErrAlgorithm},
		{"ES384 not allowed", sign(t, p384Key(t, "ec1"), goodClaims("alice", pull), nil), ErrAlgorithm},
		{"RS256 header on an EC key", algSwap(t, f.ec), ErrInvalidToken},
		{"unknown kid", sign(t, newECKey(t, "nobody"), goodClaims("alice", pull), nil), ErrUntrustedKey},
		{"no key named", sign(t, newECKey(t, ""), goodClaims("alice", pull), nil), ErrUntrustedKey},
		{"jwk header with an attacker key", sign(t, attacker, goodClaims("alice", pull), map[string]any{"jwk": attackerJWK}), ErrUntrustedKey},
		{"jwk header naming a trusted key", sign(t, testKey{f.ec.priv, f.ec.method, ""}, goodClaims("alice", pull), map[string]any{"jwk": trustedJWK}), nil},
		{"jwk header of a trusted key, signed by another", sign(t, attacker, goodClaims("alice", pull), map[string]any{"jwk": trustedJWK}), ErrBadSignature},
		{"x5c chain to the root", sign(t, f.chainKey, goodClaims("alice", pull), map[string]any{"x5c": x5c(f.leaf)}), nil},
		{"x5c chain to another root", sign(t, f.chainKey, goodClaims("alice", pull), map[string]any{"x5c": x5c(f.otherLeaf)}), ErrCertificate},
		{"x5c with the other root appended", sign(t, f.chainKey, goodClaims("alice", pull), map[string]any{"x5c": x5c(f.otherLeaf, f.other.cert)}), ErrCertificate},
		{"x5c leaf without digitalSignature", sign(t, f.chainKey, goodClaims("alice", pull), map[string]any{"x5c": x5c(f.leafNoSign)}), ErrCertificate},
		{"x5c chain, signed by another key", sign(t, attacker, goodClaims("alice", pull), map[string]any{"x5c": x5c(f.leaf)}), ErrBadSignature},
		{"x5c not base64", sign(t, f.chainKey, goodClaims("alice", pull), map[string]any{"x5c": []string{"%%%"}}), ErrCertificate},
		{"root certificate key by libtrust kid", sign(t, f.rootKeyAsKID, goodClaims("alice", pull), nil), nil},
		{"refresh token type", sign(t, f.ec, goodClaims("alice"), map[string]any{"typ": refreshTyp}), ErrWrongTokenType},
		{"refresh token use claim", sign(t, f.ec, with(func(c jwt.MapClaims) { c["token_use"] = "refresh" }), nil), ErrWrongTokenType},
		{"access entry without a name", sign(t, f.ec, with(func(c jwt.MapClaims) { c["access"] = []map[string]any{{"type": "repository"}} }), nil), ErrMalformedClaims},
		{"access not a list", sign(t, f.ec, with(func(c jwt.MapClaims) { c["access"] = "repository:x:pull" }), nil), ErrInvalidToken},
		{"garbage", "not.a.token", ErrInvalidToken},
		{"oversized", strings.Repeat("a", maxTokenSize+1), ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, access, err := f.v.Verify(context.Background(), tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if sub != "alice" || len(access) != 1 || access[0].Name != "team/app" {
					t.Fatalf("got %q %v", sub, access)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted (sub %q, access %v), want %v", sub, access, tc.want)
			}
			if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, tc.want) {
				t.Fatalf("error %v: want ErrInvalidToken and %v", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.token) && len(tc.token) > 20 {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
}

func TestVerifyAccessClaimAsGiven(t *testing.T) {
	f := newVerifierFixture(t)
	for _, tc := range []struct {
		name   string
		access []scope.Scope
		action string
		want   bool
	}{
		{"pull-only allows pull", []scope.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}, "pull", true},
		{"pull-only refuses push", []scope.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}, "push", false},
		{"pull-only refuses delete", []scope.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}, "delete", false},
		{"star allows delete", []scope.Scope{{Type: "repository", Name: "a", Actions: []string{"*"}}}, "delete", true},
		{"host:port name", []scope.Scope{{Type: "repository", Name: "localhost:5000/a", Actions: []string{"push"}}}, "push", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, access, err := f.v.Verify(context.Background(), sign(t, f.ec, goodClaims("bob", tc.access...), nil))
			if err != nil {
				t.Fatal(err)
			}
			if sub != "bob" || !slices.EqualFunc(access, tc.access, scopeEqual) {
				t.Fatalf("got %q %v, want bob %v", sub, access, tc.access)
			}
			if got := access[0].Allows(tc.action); got != tc.want {
				t.Fatalf("Allows(%s) = %v", tc.action, got)
			}
		})
	}
}

func TestVerifyAnonymousToken(t *testing.T) {
	f := newVerifierFixture(t)
	c := goodClaims("")
	delete(c, "sub")
	c["access"] = []scope.Scope{}
	sub, access, err := f.v.Verify(context.Background(), sign(t, f.ec, c, nil))
	if err != nil || sub != "" || len(access) != 0 {
		t.Fatalf("got %q %v %v", sub, access, err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	small := writeFile(t, "small.json", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing jwks file", Config{JWKS: "/nonexistent/jwks.json"}, "auth.token.jwks"},
		{"jwks with only a secret", Config{JWKS: small}, "no usable signing key"},
		{"root bundle without certificates", Config{RootCertBundle: writeFile(t, "r.pem", []byte("nothing"))}, "no PEM CERTIFICATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Service, tc.cfg.Issuer = testService, testIssuer
			tc.cfg.SetDefaults()
			_, err := NewVerifier(context.Background(), tc.cfg, VerifierOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func scopeEqual(a, b scope.Scope) bool {
	return a.Type == b.Type && a.Name == b.Name && slices.Equal(a.Actions, b.Actions)
}

func mustThumb(t *testing.T, k testKey) string {
	t.Helper()
	tp, err := thumbprint(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// noneToken is an unsigned token naming a trusted kid.
func noneToken(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	tok.Header["kid"] = "ec1"
	raw, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// hmacWithPublicKey is the classic key-confusion forgery: HS256 keyed
// with the bytes of a trusted public key, which anyone may know.
func hmacWithPublicKey(t *testing.T, k testKey, c jwt.MapClaims) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = k.kid
	raw, err := tok.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// algSwap claims RS256 for a token whose kid is an EC key, with an
// HMAC-made signature so that only the key/alg check can refuse it.
func algSwap(t *testing.T, k testKey) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": k.kid, "typ": "JWT"})
	p, _ := json.Marshal(goodClaims("alice"))
	head := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	mac := hmac.New(sha256.New, []byte("x"))
	mac.Write([]byte(head))
	return head + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func p384Key(t *testing.T, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{k, jwt.SigningMethodES384, kid}
}
