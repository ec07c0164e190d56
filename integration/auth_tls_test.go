package integration

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/tlsreload/tlstest"
)

// testCA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1 and localhost.
type testCA struct {
	dir      string // holds ca.crt (the layout of a --cert-dir), server.crt, server.key
	caFile   string
	certFile string
	keyFile  string
	pool     *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := tlstest.NewCA(t, "stratus test CA")
	leaf := ca.Issue(t, "127.0.0.1", false)
	c := &testCA{dir: t.TempDir(), pool: ca.Pool()}
	// Not tls.crt/tls.key: podman reads a --cert-dir's *.key as client
	// keys and wants a matching *.cert.
	c.caFile, c.certFile, c.keyFile = filepath.Join(c.dir, "ca.crt"), filepath.Join(c.dir, "server.pem"), filepath.Join(c.dir, "server-key.pem")
	for path, data := range map[string][]byte{c.caFile: ca.PEM, c.certFile: leaf.CertPEM, c.keyFile: leaf.KeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// client trusts only the test CA.
func (ca *testCA) client() *http.Client {
	return &http.Client{Transport: ca.transport(), Timeout: time.Minute}
}

func (ca *testCA) transport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}}
}

// orgPolicyYAML is the organisation of the auth tests: public/** pulled by
// anyone, team-a/** pushed by its members, a personal namespace each, the
// catalog for every signed-in user.
const orgPolicyYAML = `  access:
    groups:
      team-a: [alice, bob]
    rules:
      - repository: "public/**"
        anonymous: true
        users: ["*"]
        actions: [pull]
      - repository: "public/**"
        users: [alice]
        actions: ["*"]
      - repository: "team-a/**"
        groups: [team-a]
        actions: [pull, push, delete]
      - repository: "~/**"
        users: ["*"]
        actions: ["*"]
      - catalog: true
        users: ["*"]
        actions: ["*"]
`

// authUsers are the htpasswd users of the auth tests.
var authUsers = map[string]string{"alice": "alice-Pw-0001", "bob": "bob-Pw-0002", "carol": "carol-Pw-0003"}

// authSetup is a TLS + htpasswd configuration on disk.
type authSetup struct {
	ca       *testCA
	htpasswd string
	config   string
}

// newAuthSetup writes the htpasswd file with `stratus htpasswd add` (the
// password on stdin) and a configuration with TLS, htpasswd and policy.
func newAuthSetup(t *testing.T, policy string) *authSetup {
	t.Helper()
	dir := t.TempDir()
	s := &authSetup{ca: newTestCA(t), htpasswd: filepath.Join(dir, "htpasswd"), config: filepath.Join(dir, "stratus.yaml")}
	for user, pw := range authUsers {
		runStdin(t, nil, strings.NewReader(pw+"\n"), stratusBin, "htpasswd", "add", "--cost", "6", "--file", s.htpasswd, user)
	}
	s.writeConfig(t, policy)
	return s
}

func (s *authSetup) writeConfig(t *testing.T, policy string) {
	t.Helper()
	cfg := "http:\n  tls:\n    cert: " + s.ca.certFile + "\n    key: " + s.ca.keyFile + "\n" +
		"auth:\n  htpasswd:\n    path: " + s.htpasswd + "\n    realm: Stratus test\n" + policy
	tmp := s.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.config); err != nil {
		t.Fatal(err)
	}
}

// start runs `stratus serve` with the setup over TLS, ready when /readyz
// answers over HTTPS.
func (s *authSetup) start(t *testing.T, args ...string) *server {
	t.Helper()
	return launchServer(t, stratusBin, append([]string{"--config", s.config, "--root", t.TempDir()}, args...), nil, s.ca.client())
}
