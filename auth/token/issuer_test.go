package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stratus-registry/stratus/auth/scope"
)

func issuerConfig(t *testing.T, key crypto.Signer) Config {
	t.Helper()
	cfg := Config{Realm: "https://registry.test/auth/token", Service: testService, Issuer: testIssuer, IssuerEnabled: true}
	if key != nil {
		cfg.IssuerKey = writeFile(t, "issuer.pem", keyPEM(t, key))
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newIssuerVerifier is an Issuer and a Verifier that trusts it, as
// cmd/stratus wires them in built-in mode.
func newIssuerVerifier(t *testing.T, cfg Config, now func() time.Time) (*Issuer, *Verifier) {
	t.Helper()
	iss, err := NewIssuer(cfg, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(context.Background(), cfg, VerifierOptions{Trust: []crypto.PublicKey{iss.PublicKey()}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return iss, v
}

func TestIssuerRoundTrip(t *testing.T) {
	access := []scope.Scope{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"ephemeral", nil, "ES256"},
		{"EC P-256", newECKey(t, "").priv, "ES256"},
		{"RSA", newRSAKey(t, "").priv, "RS256"},
		{"Ed25519", newEdKey(t, "").priv, "EdDSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, v := newIssuerVerifier(t, issuerConfig(t, tc.key), fixedClock())
			tok, err := iss.Issue("alice", access)
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != DefaultIssuerTTL || !tok.IssuedAt.Equal(testNow) {
				t.Fatalf("issued %+v", tok)
			}
			sub, got, err := v.Verify(context.Background(), tok.Token)
			if err != nil || sub != "alice" || len(got) != 1 || !scopeEqual(got[0], access[0]) {
				t.Fatalf("verify: %q %v %v", sub, got, err)
			}
			parsed, _, err := jwt.NewParser().ParseUnverified(tok.Token, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			c := parsed.Claims.(jwt.MapClaims)
			for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
				if _, ok := c[k]; !ok {
					t.Errorf("claim %s missing", k)
				}
			}
			if parsed.Header["alg"] != tc.alg || parsed.Header["kid"] != mustThumb(t, testKey{priv: iss.key}) {
				t.Errorf("header %v", parsed.Header)
			}
		})
	}
}

func TestIssuerReplicasShareKey(t *testing.T) {
	cfg := issuerConfig(t, newECKey(t, "").priv)
	a, _ := newIssuerVerifier(t, cfg, fixedClock())
	_, vb := newIssuerVerifier(t, cfg, fixedClock())
	tok, err := a.Issue("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := vb.Verify(context.Background(), tok.Token); err != nil {
		t.Fatalf("replica B refuses replica A's token: %v", err)
	}
	ra, err := a.IssueRefresh("alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newIssuerVerifier(t, cfg, fixedClock())
	if sub, err := b.VerifyRefresh(ra); err != nil || sub != "alice" {
		t.Fatalf("replica B refuses replica A's refresh token: %q %v", sub, err)
	}
}

func TestIssuerCertificate(t *testing.T) {
	k := newECKey(t, "")
	ca := newCA(t, "issuer ca")
	leaf := ca.issue(t, k, x509.KeyUsageDigitalSignature)
	cfg := issuerConfig(t, k.priv)
	cfg.IssuerCertificate = writeFile(t, "chain.pem", certPEM(leaf, ca.cert))
	iss, v := newIssuerVerifier(t, cfg, fixedClock())
	tok, err := iss.Issue("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, _ := jwt.NewParser().ParseUnverified(tok.Token, jwt.MapClaims{})
	if chain, _ := parsed.Header["x5c"].([]any); len(chain) != 2 {
		t.Fatalf("x5c %v, want leaf and CA", parsed.Header["x5c"])
	}
	if _, _, err := v.Verify(context.Background(), tok.Token); err != nil {
		t.Fatalf("own token with x5c refused: %v", err)
	}
	// A verifier trusting only the CA (another registry) accepts it too.
	ext := Config{Service: testService, Issuer: testIssuer, RootCertBundle: writeFile(t, "ca.pem", certPEM(ca.cert))}
	ext.SetDefaults()
	v2, err := NewVerifier(context.Background(), ext, VerifierOptions{Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v2.Verify(context.Background(), tok.Token); err != nil {
		t.Fatalf("x5c token refused by a root-bundle verifier: %v", err)
	}

	cfg.IssuerCertificate = writeFile(t, "wrong.pem", certPEM(ca.cert))
	if _, err := NewIssuer(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "not for issuer_key") {
		t.Fatalf("certificate of another key accepted: %v", err)
	}
}

func TestRefreshAndAccessTokensDoNotMix(t *testing.T) {
	clk := &clock{t: testNow}
	iss, v := newIssuerVerifier(t, issuerConfig(t, nil), clk.now)
	access, err := iss.Issue("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	refresh, err := iss.IssueRefresh("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(context.Background(), refresh); !errors.Is(err, ErrWrongTokenType) {
		t.Fatalf("refresh token used as access token: %v", err)
	}
	if _, err := iss.VerifyRefresh(access.Token); !errors.Is(err, ErrBadCredentials) || !errors.Is(err, ErrWrongTokenType) {
		t.Fatalf("access token used as refresh token: %v", err)
	}
	other, _ := newIssuerVerifier(t, issuerConfig(t, nil), clk.now)
	if _, err := other.VerifyRefresh(refresh); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("refresh token of another key: %v", err)
	}
	clk.advance(DefaultRefreshTTL + 2*time.Minute)
	if _, err := iss.VerifyRefresh(refresh); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired refresh token: %v", err)
	}
}

func TestParsePrivateKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, tc := range []struct {
		name string
		pem  []byte
		want string // error substring; "" means accepted
	}{
		{"SEC 1 EC", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), ""},
		{"PKCS #1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), ""},
		{"PKCS #8 after a certificate block", append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), keyPEM(t, ec)...), ""},
		{"P-384", keyPEM(t, p384), "only P-256"},
		{"RSA 1024", keyPEM(t, small), "at least 2048"},
		{"no PEM", []byte("hello"), "no PEM private key"},
		{"broken DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), "PRIVATE KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parsePrivateKey(tc.pem)
			if err == nil {
				_, err = methodFor(k.Public())
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
