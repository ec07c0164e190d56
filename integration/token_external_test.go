package integration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasremote "oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/stratus-registry/stratus/auth/scope"
)

const externalIssuer = "https://idp.test/realms/registry"

// externalIdP is an identity provider made in the test: a JWKS URL with
// keys it can rotate, a certificate authority for x5c tokens, and a token
// endpoint (the realm) that grants carol what she asks on ext/a only.
type externalIdP struct {
	t    *testing.T
	jwks *httptest.Server
	idp  *httptest.Server

	mu     sync.Mutex
	key    *ecdsa.PrivateKey
	kid    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newExternalIdP(t *testing.T) *externalIdP {
	t.Helper()
	e := &externalIdP{t: t}
	e.rotate("k1")
	var err error
	if e.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test token CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, e.caKey.Public(), e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if e.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	e.jwks = httptest.NewServer(http.HandlerFunc(e.serveJWKS))
	t.Cleanup(e.jwks.Close)
	e.idp = httptest.NewServer(http.HandlerFunc(e.serveToken))
	t.Cleanup(e.idp.Close)
	return e
}

// realm is the IdP's token endpoint by host name: go-containerregistry
// refuses a realm on a loopback IP literal other than the registry's own
// host:port (its SSRF guard), but not a name.
func (e *externalIdP) realm() string {
	return "http://localhost:" + strconv.Itoa(e.idp.Listener.Addr().(*net.TCPAddr).Port) + "/token"
}

// rotate replaces the published key (the old one is gone from the set).
func (e *externalIdP) rotate(kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.key, e.kid = k, kid
}

func (e *externalIdP) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: e.key.Public(), KeyID: e.kid, Use: "sig", Algorithm: "ES256"}}}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	json.NewEncoder(w).Encode(set)
}

// serveToken is a Docker token spec GET endpoint: carol/carol-pw gets
// what she asks on ext/a, nothing elsewhere.
func (e *externalIdP) serveToken(w http.ResponseWriter, r *http.Request) {
	user, pw, ok := r.BasicAuth()
	if !ok || user != "carol" || pw != "carol-pw" {
		w.Header().Set("WWW-Authenticate", `Basic realm="idp"`)
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
		return
	}
	asked, err := scope.ParseAll(r.URL.Query()["scope"]...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	granted := scope.Intersect(asked, []scope.Scope{{Type: "repository", Name: "ext/a", Actions: []string{"*"}}})
	tok := e.sign(user, granted)
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
}

func (e *externalIdP) claims(sub string, access []scope.Scope) jwt.MapClaims {
	now := time.Now()
	if access == nil {
		access = []scope.Scope{}
	}
	return jwt.MapClaims{
		"iss": externalIssuer, "sub": sub, "aud": []string{"other", tokenService},
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": access,
	}
}

// sign is a token signed by the current JWKS key, named by kid.
func (e *externalIdP) sign(sub string, access []scope.Scope) string {
	e.mu.Lock()
	key, kid := e.key, e.kid
	e.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, e.claims(sub, access))
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// signX5C is a token signed by a fresh key certified by ca, with the
// chain in x5c and no kid.
func (e *externalIdP) signX5C(caCert *x509.Certificate, caKey crypto.Signer, sub string, access []scope.Scope) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, k.Public(), caKey)
	if err != nil {
		e.t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, e.claims(sub, access))
	tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(der)}
	raw, err := tok.SignedString(k)
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// startExternalTokenServer runs stratus trusting the IdP's JWKS URL and CA.
func startExternalTokenServer(t *testing.T, e *externalIdP) *server {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.caCert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, []string{"--root", t.TempDir(),
		"--set", "auth.token.realm=" + e.realm(),
		"--set", "auth.token.service=" + tokenService,
		"--set", "auth.token.issuer=" + externalIssuer,
		"--set", "auth.token.jwks_url=" + e.jwks.URL,
		"--set", "auth.token.jwks_min_refresh=1s",
		"--set", "auth.token.rootcertbundle=" + bundle,
	})
}

func access(name string, actions ...string) []scope.Scope {
	return []scope.Scope{{Type: "repository", Name: name, Actions: actions}}
}

func TestTokenExternalIssuer(t *testing.T) {
	e := newExternalIdP(t)
	srv := startExternalTokenServer(t, e)
	realm := `Bearer realm="` + e.realm() + `",service="` + tokenService + `"`

	// go-containerregistry through the whole challenge flow: 401, the
	// IdP's realm with Basic credentials, the token, the retry.
	carol := remote.WithAuth(&authn.Basic{Username: "carol", Password: "carol-pw"})
	img, err := random.Image(32*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "ext/a:v1"), img, carol); err != nil {
		t.Fatalf("push via the external realm: %v", err)
	}
	got, err := remote.Image(ref(t, srv, "ext/a:v1"), carol)
	if err != nil {
		t.Fatalf("pull via the external realm: %v", err)
	}
	layersEqual(t, img, got)
	if err := remote.Write(ref(t, srv, "ext/b:v1"), img, carol); err == nil {
		t.Fatal("push to ext/b, which the IdP grants nothing on")
	}

	manifestA := srv.URL() + "/v2/ext/a/manifests/v1"
	uploadA := srv.URL() + "/v2/ext/a/blobs/uploads/"
	for _, tc := range []struct {
		name, method, url, token string
		status                   int
		challenge                string
	}{
		{"kid token pulls A", "GET", manifestA, e.sign("dave", access("ext/a", "pull")), 200, ""},
		{"x5c token pulls A", "GET", manifestA, e.signX5C(e.caCert, e.caKey, "dave", access("ext/a", "pull")), 200, ""},
		{"pull-only token cannot push", "POST", uploadA, e.sign("dave", access("ext/a", "pull")), 401,
			realm + `,scope="repository:ext/a:pull,push",error="insufficient_scope"`},
		{"token for A on B", "GET", srv.URL() + "/v2/ext/b/manifests/v1", e.sign("dave", access("ext/a", "*")), 401,
			realm + `,scope="repository:ext/b:pull",error="insufficient_scope"`},
		{"catalog without registry:catalog:*", "GET", srv.URL() + "/v2/_catalog", e.sign("dave", access("ext/a", "*")), 401,
			realm + `,scope="registry:catalog:*",error="insufficient_scope"`},
		{"x5c chain to another root", "GET", manifestA, otherRootToken(t, e), 401,
			realm + `,scope="repository:ext/a:pull",error="invalid_token"`},
		{"jwk header with the attacker's key", "GET", manifestA, jwkHeaderToken(t, e), 401,
			realm + `,scope="repository:ext/a:pull",error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := registryCall(t, tc.method, tc.url, tc.token)
			if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Fatalf("%d %q\nwant %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
		})
	}

	t.Run("JWKS rotation", func(t *testing.T) {
		old := e.sign("dave", access("ext/a", "pull"))
		e.rotate("k2")
		fresh := e.sign("dave", access("ext/a", "pull"))
		// jwks_min_refresh is 1s: within a few seconds the new kid is
		// fetched, and the old key, gone from the set, no longer verifies.
		deadline := time.Now().Add(20 * time.Second)
		for registryCall(t, "GET", manifestA, fresh).StatusCode != 200 {
			if time.Now().After(deadline) {
				t.Fatal("a token by the new kid is still refused")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if resp := registryCall(t, "GET", manifestA, old); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("the removed key's token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func otherRootToken(t *testing.T, e *externalIdP) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := x509.ParseCertificate(der)
	return e.signX5C(other, k, "dave", access("ext/a", "pull"))
}

// jwkHeaderToken is CVE-2025-24976's forgery: a token carrying its own key.
func jwkHeaderToken(t *testing.T, e *externalIdP) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, e.claims("mallory", access("ext/a", "*")))
	tok.Header["jwk"] = jose.JSONWebKey{Key: k.Public()}
	raw, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// orasPushPull pushes a manifest with a layer as user through oras-go's
// auth.Client, by the token spec's GET and by OAuth2's POST, and reads it back.
func orasPushPull(t *testing.T, srv *server, user, password, repoName string) {
	t.Helper()
	for _, oauth2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("oras-go oauth2=%v", oauth2), func(t *testing.T) {
			ctx := context.Background()
			repo, err := orasremote.NewRepository(srv.Addr + "/" + repoName)
			if err != nil {
				t.Fatal(err)
			}
			repo.PlainHTTP = true
			repo.Client = &auth.Client{
				Cache:              auth.NewCache(),
				Credential:         auth.StaticCredential(srv.Addr, auth.Credential{Username: user, Password: password}),
				ForceAttemptOAuth2: oauth2,
			}
			layer := []byte(fmt.Sprintf("oras layer oauth2=%v", oauth2))
			ld := content.NewDescriptorFromBytes("application/vnd.example.layer", layer)
			if err := repo.Push(ctx, ld, bytes.NewReader(layer)); err != nil {
				t.Fatalf("push layer: %v", err)
			}
			md, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example",
				oras.PackManifestOptions{Layers: []ocispec.Descriptor{ld}})
			if err != nil {
				t.Fatalf("pack: %v", err)
			}
			tag := fmt.Sprintf("oauth2-%v", oauth2)
			if err := repo.Tag(ctx, md, tag); err != nil {
				t.Fatal(err)
			}
			_, rc, err := repo.FetchReference(ctx, tag)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			rc.Close()
			rc, err = repo.Fetch(ctx, ld)
			if err != nil {
				t.Fatalf("fetch layer: %v", err)
			}
			defer rc.Close()
			if b, _ := io.ReadAll(rc); !bytes.Equal(b, layer) {
				t.Fatal("layer bytes differ")
			}
		})
	}
}
