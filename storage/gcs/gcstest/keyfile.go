package gcstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// KeyFile is a throwaway service-account key for tests.
type KeyFile struct {
	// Path is the JSON key file, for storage.gcs.credentials_file.
	Path  string
	Email string
	// Public verifies the signatures the key makes.
	Public *rsa.PublicKey
	// Tokens counts the token requests the local token server answered.
	Tokens *atomic.Int64
}

// NewKeyFile makes a fresh RSA service-account key file whose token_uri
// is a local server handing out tokens, so a driver authenticates with it
// for real without leaving the machine (the emulator ignores the token).
// The server stops when the test ends.
func NewKeyFile(tb testing.TB) *KeyFile {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	k := &KeyFile{Email: "stratus-signer@stratus-test.iam.gserviceaccount.com", Public: &key.PublicKey, Tokens: new(atomic.Int64)}
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.Tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"test-token","token_type":"Bearer","expires_in":3600}`)
	}))
	tb.Cleanup(tokenSrv.Close)
	file, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "stratus-test",
		"private_key_id": "test-key",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   k.Email,
		"client_id":      "1",
		"token_uri":      tokenSrv.URL + "/token",
	})
	k.Path = filepath.Join(tb.TempDir(), "key.json")
	if err := os.WriteFile(k.Path, file, 0o600); err != nil {
		tb.Fatal(err)
	}
	return k
}
