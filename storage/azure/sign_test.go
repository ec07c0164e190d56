package azure_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/azure/azuretest"
)

func httpGet(t *testing.T, client *http.Client, u string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestSignedURLAccountKey: with a shared key, SignedURL is a read-only
// service SAS that Azurite honours for GET and refuses for writes and
// after expiry; with redirect off or a sas_token it is ErrUnsupported.
func TestSignedURLAccountKey(t *testing.T) {
	srv := azuretest.Start(t)
	ctx := t.Context()
	cfg := srv.Config("sign-" + strings.ToLower(rand.Text()))
	cfg.Redirect = true
	d := newTestDriver(t, cfg)
	data := randData(70 << 10)
	if _, err := d.Put(ctx, "blobs/x", bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	u, err := d.SignedURL(ctx, "blobs/x", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	q := mustQuery(t, u)
	if q.Get("sp") != "r" || q.Get("sig") == "" || q.Get("sr") != "b" {
		t.Fatalf("SAS %q: want sp=r, sr=b and a signature", u)
	}
	if status, got := httpGet(t, http.DefaultClient, u); status != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET of the SAS URL: %d, %d bytes; want 200 and the %d bytes", status, len(got), len(data))
	}
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("overwrite"))
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode < 400 {
		t.Fatalf("PUT through a read-only SAS: %v %v; want refused", resp.Status, err)
	}
	short, err := d.SignedURL(ctx, "blobs/x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if status, _ := httpGet(t, http.DefaultClient, short); status != http.StatusForbidden {
		t.Errorf("GET of an expired SAS: %d; want 403", status)
	}

	cfg.Redirect = false
	if _, err := newTestDriver(t, cfg).SignedURL(ctx, "blobs/x", 0); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("SignedURL with redirect off: %v; want ErrUnsupported", err)
	}
	sasCfg := srv.Config(cfg.RootDirectory)
	sasCfg.AccountKey = ""
	sasCfg.SASToken = strings.SplitN(u, "?", 2)[1] // any SAS will do: it cannot sign
	if _, err := newTestDriver(t, sasCfg).SignedURL(ctx, "blobs/x", 0); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("SignedURL with a sas_token: %v; want ErrUnsupported", err)
	}
	if err := d.Delete(ctx, "blobs/x"); err != nil {
		t.Fatal(err)
	}
}

// TestSignedURLUserDelegation runs the azidentity code path against an
// Azurite of its own that serves HTTPS and checks bearer tokens: every
// operation authenticates with a token, and SignedURL is a user-delegation
// SAS (one cached delegation key) that Azurite honours.
func TestSignedURLUserDelegation(t *testing.T) {
	bin, err := azuretest.FindBinary()
	if err != nil {
		t.Fatal(err) // Start above has already skipped or failed without it
	}
	srv, err := azuretest.LaunchOAuth(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx := t.Context()
	cfg := srv.Config("ud")
	cfg.AccountKey = "" // DefaultAzureCredential's place
	// The SDK takes the account name of a user-delegation SAS from the
	// first DNS label of the service URL, as in production
	// (<account>.blob.core.windows.net); path-style URLs cannot sign.
	cfg.ServiceURL = srv.HostStyleURL
	cfg.Redirect = true
	cred := &azuretest.TokenCredential{}
	d, err := azure.NewWithToken(ctx, cfg, testLogger(t), cred, srv.RootCAs, srv.Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data := randData(5000)
	if _, err := d.Put(ctx, "blobs/y", bytes.NewReader(data), storage.PutOptions{Size: int64(len(data)), CreateOnly: true}); err != nil {
		t.Fatalf("Put with a bearer token: %v", err)
	}
	if cred.Calls() == 0 {
		t.Fatal("the driver never asked the credential for a token")
	}
	u1, err := d.SignedURL(ctx, "blobs/y", 2*time.Minute)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	u2, err := d.SignedURL(ctx, "blobs/y", 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	q1, q2 := mustQuery(t, u1), mustQuery(t, u2)
	for _, p := range []string{"skoid", "sktid", "skt", "ske", "sig"} {
		if q1.Get(p) == "" {
			t.Errorf("user-delegation SAS %q lacks %s", u1, p)
		}
	}
	if q1.Get("ske") != q2.Get("ske") || q1.Get("skt") != q2.Get("skt") {
		t.Errorf("two URLs used two delegation keys (%s, %s); want the cached one", q1.Get("ske"), q2.Get("ske"))
	}
	if ske, err := time.Parse(time.RFC3339, q1.Get("ske")); err != nil || ske.Before(time.Now().Add(2*time.Minute)) {
		t.Errorf("delegation key expiry %q does not outlive the URL", q1.Get("ske"))
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs}, DialContext: srv.Dial}}
	if status, got := httpGet(t, client, u1); status != 200 || !bytes.Equal(got, data) {
		t.Fatalf("GET of the user-delegation SAS URL %s: %d, %s; want 200 and the %d bytes", u1, status, got, len(data))
	}
	pathStyle := cfg
	pathStyle.ServiceURL = srv.ServiceURL
	pd, err := azure.NewWithToken(ctx, pathStyle, testLogger(t), cred, srv.RootCAs, srv.Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer pd.Close()
	if _, err := pd.SignedURL(ctx, "blobs/y", time.Minute); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("user-delegation SignedURL on a path-style URL: %v; want ErrUnsupported (the SDK would sign for the wrong account)", err)
	}
	tampered := strings.Replace(u1, "blobs%2Fy", "blobs%2Fz", 1)
	tampered = strings.Replace(tampered, "blobs/y", "blobs/z", 1)
	if status, _ := httpGet(t, client, tampered); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Errorf("a SAS used for another blob: %d; want refused", status)
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}
