package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// These tests run `stratus serve` with auth.token: the built-in issuer for
// htpasswd users (tokens from /auth/token), and an external issuer made in
// the test (a JWKS URL, an x5c chain to a root bundle).

const tokenService = "stratus-test"

// tokenUsers are the htpasswd users of the built-in issuer tests.
var tokenUsers = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// tokenPolicy: alice owns team-a/**, anybody may pull public/**,
// authenticated users see the catalog.
const tokenPolicy = `
    groups:
      team-a: [alice]
    rules:
      - {repository: "team-a/**", groups: [team-a], actions: ["*"]}
      - {repository: "public/**", anonymous: true, users: ["*"], actions: [pull]}
      - {repository: "public/**", users: [alice], actions: [push]}
      - {catalog: true, users: ["*"], actions: ["*"]}
`

// freeAddr is a loopback address with a port nobody listens on, for a
// server whose realm must name its own address before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeHtpasswd makes an htpasswd file with `stratus htpasswd add`, the
// way operators do (the password on stdin).
func writeHtpasswd(t *testing.T, users map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	for u, p := range users {
		runStdin(t, nil, strings.NewReader(p+"\n"), stratusBin, "htpasswd", "add", "--file", path, u)
	}
	return path
}

// issuerKeyFile is a PEM EC P-256 private key for the built-in issuer.
func issuerKeyFile(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "token.key")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startBuiltinTokenServer runs stratus with htpasswd users, the policy and
// the built-in token endpoint as the realm.
func startBuiltinTokenServer(t *testing.T) *server {
	t.Helper()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`auth:
  htpasswd:
    path: %s
  access:%s
  token:
    realm: http://%s/auth/token
    service: %s
    issuer_enabled: true
    issuer_key: %s
`, writeHtpasswd(t, tokenUsers), tokenPolicy, addr, tokenService, issuerKeyFile(t))
	path := filepath.Join(t.TempDir(), "stratus.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, []string{"--config", path, "--root", t.TempDir(), "--addr", addr})
}

// tokenAnswer is the token endpoint's JSON.
type tokenAnswer struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
}

func decodeToken(t *testing.T, resp *http.Response) tokenAnswer {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %s: %s", resp.Status, body)
	}
	var a tokenAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.Token == "" || a.Token != a.AccessToken {
		t.Fatalf("token answer %s: %v", body, err)
	}
	return a
}

// getToken is docker's GET (Basic credentials, optional offline_token).
func getToken(t *testing.T, srv *server, user, password string, offline bool, scopes ...string) tokenAnswer {
	t.Helper()
	q := url.Values{"service": {tokenService}, "client_id": {"docker"}, "scope": scopes}
	if offline {
		q.Set("offline_token", "true")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/auth/token?"+q.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return decodeToken(t, resp)
}

// postToken is the OAuth2 form POST (containerd's login, docker's refresh).
func postToken(t *testing.T, srv *server, form url.Values) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.PostForm(srv.URL()+"/auth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// registryCall makes one registry request with an optional bearer token.
func registryCall(t *testing.T, method, u, bearer string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTokenBuiltinChallenges(t *testing.T) {
	srv := startBuiltinTokenServer(t)
	realm := `Bearer realm="http://` + srv.Addr + `/auth/token",service="` + tokenService + `"`
	pullOnly := getToken(t, srv, "bob", "bob-pw", false, "repository:public/app:pull,push").Token
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		challenge                 string
	}{
		{"base without a token", "GET", "/v2/", "", 401, realm},
		{"pull without a token", "GET", "/v2/team-a/app/manifests/v1", "", 401, realm + `,scope="repository:team-a/app:pull"`},
		{"push without a token", "POST", "/v2/team-a/app/blobs/uploads/", "", 401, realm + `,scope="repository:team-a/app:pull,push"`},
		{"catalog without a token", "GET", "/v2/_catalog", "", 401, realm + `,scope="registry:catalog:*"`},
		{"a forged token", "GET", "/v2/team-a/app/manifests/v1", "abc.def.ghi", 401, realm + `,scope="repository:team-a/app:pull",error="invalid_token"`},
		{"push with a pull-only token", "POST", "/v2/public/app/blobs/uploads/", pullOnly, 401, realm + `,scope="repository:public/app:pull,push",error="insufficient_scope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := registryCall(t, tc.method, srv.URL()+tc.path, tc.token)
			if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Fatalf("%d %q\nwant %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
		})
	}
}

func TestTokenBuiltinDockerAndContainerdFlows(t *testing.T) {
	srv := startBuiltinTokenServer(t)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "team-a/app:v1"), img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})); err != nil {
		t.Fatalf("push as alice: %v", err)
	}
	manifest := srv.URL() + "/v2/team-a/app/manifests/v1"

	// docker: GET with offline_token, then POST grant_type=refresh_token.
	first := getToken(t, srv, "alice", "alice-pw", true, "repository:team-a/app:pull")
	if first.RefreshToken == "" || first.ExpiresIn <= 0 {
		t.Fatalf("GET with offline_token: %+v", first)
	}
	resp, body := postToken(t, srv, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}, "service": {tokenService},
		"client_id": {"docker"}, "scope": {"repository:team-a/app:pull"},
	})
	var refreshed tokenAnswer
	if resp.StatusCode != 200 || json.Unmarshal(body, &refreshed) != nil || refreshed.AccessToken == "" {
		t.Fatalf("refresh: %s %s", resp.Status, body)
	}
	if r := registryCall(t, "GET", manifest, refreshed.AccessToken); r.StatusCode != 200 {
		t.Fatalf("pull with the refreshed token: %s", r.Status)
	}

	// containerd: POST grant_type=password first.
	resp, body = postToken(t, srv, url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-pw"}, "service": {tokenService},
		"client_id": {"containerd-client"}, "scope": {"repository:team-a/app:pull"},
	})
	var cd tokenAnswer
	if resp.StatusCode != 200 || json.Unmarshal(body, &cd) != nil || cd.AccessToken == "" {
		t.Fatalf("containerd POST: %s %s", resp.Status, body)
	}
	if r := registryCall(t, "GET", manifest, cd.AccessToken); r.StatusCode != 200 {
		t.Fatalf("pull with the containerd token: %s", r.Status)
	}

	// A wrong password is a 401 with a Basic challenge, in both forms.
	resp, body = postToken(t, srv, url.Values{
		"grant_type": {"password"}, "username": {"alice"}, "password": {"nope"}, "client_id": {"c"},
	})
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="`+tokenService+`"` || !strings.Contains(string(body), `"invalid_grant"`) {
		t.Fatalf("wrong password: %s %q %s", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
	}

	// Bob asked for push and pull on team-a but gets neither: his token
	// pulls nothing there.
	bob := getToken(t, srv, "bob", "bob-pw", false, "repository:team-a/app:pull,push")
	if r := registryCall(t, "GET", manifest, bob.Token); r.StatusCode == 200 {
		t.Fatal("bob pulled team-a/app")
	}
	// Anonymous tokens pull public/ only.
	anon := getToken(t, srv, "", "", false, "repository:team-a/app:pull")
	if r := registryCall(t, "GET", manifest, anon.Token); r.StatusCode == 200 {
		t.Fatal("an anonymous token pulled team-a/app")
	}
}

func TestTokenBuiltinClientLibraries(t *testing.T) {
	srv := startBuiltinTokenServer(t)
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})
	img, err := random.Image(64*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, srv, "team-a/lib:v1")
	if err := remote.Write(r, img, alice); err != nil {
		t.Fatalf("ggcr push: %v", err)
	}
	got, err := remote.Image(r, alice)
	if err != nil {
		t.Fatalf("ggcr pull: %v", err)
	}
	layersEqual(t, img, got)
	if err := remote.Write(ref(t, srv, "team-a/lib:v2"), img, remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-pw"})); err == nil {
		t.Fatal("bob pushed to team-a")
	}
	if _, err := remote.Image(ref(t, srv, "public/none:v1"), remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"})); err == nil {
		t.Fatal("pull with a wrong password worked")
	}
	orasPushPull(t, srv, "alice", "alice-pw", "team-a/artifact")
}
