package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
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
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stratus test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: t.TempDir(), pool: x509.NewCertPool()}
	ca.pool.AddCert(caCert)
	ca.caFile, ca.certFile, ca.keyFile = filepath.Join(ca.dir, "ca.crt"), filepath.Join(ca.dir, "server.pem"), filepath.Join(ca.dir, "server-key.pem")
	for path, block := range map[string]*pem.Block{
		ca.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		ca.certFile: {Type: "CERTIFICATE", Bytes: srvDER},
		ca.keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := launch.Start(ctx, launch.Spec{
		Name: "stratus",
		Path: stratusBin,
		Args: append([]string{"serve", "--config", s.config, "--addr", "127.0.0.1:0", "--set", "metrics.addr=127.0.0.1:0",
			"--root", t.TempDir()}, args...),
		Log:          launch.NewLog(serverLogLimit),
		Ready:        []launch.Check{launch.Line(listenRE)},
		ReadyTimeout: 60 * time.Second,
		StopGrace:    15 * time.Second,
	})
	if err != nil {
		t.Fatalf("start stratus: %v", err)
	}
	srv := &server{Addr: p.Match(listenRE)[1], proc: p, done: p.Done()}
	t.Cleanup(func() {
		srv.Stop()
		if t.Failed() {
			t.Logf("stratus %s log:\n%s", srv.Addr, p.Tail(80))
		}
	})
	if err := p.WaitReady(ctx, 60*time.Second, launch.HTTPGet(s.ca.client(), "https://"+srv.Addr+"/readyz", http.StatusOK)); err != nil {
		t.Fatalf("stratus at %s never became ready: %v", srv.Addr, err)
	}
	return srv
}
