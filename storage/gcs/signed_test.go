package gcs_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
)

func TestSignedURL(t *testing.T) {
	srv := gcstest.Start(t)
	kf := gcstest.NewKeyFile(t)
	cfg := srv.Config(uniqueRoot("signed"))
	cfg.Anonymous = false
	cfg.CredentialsFile = kf.Path
	cfg.Redirect = true
	d := newTestDriver(t, cfg)
	ctx := t.Context()
	body := []byte("pulled straight from the store")
	key := "blobs/sha256/ab/abcdef"
	if _, err := d.Put(ctx, key, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanRoot(t, d) })
	if kf.Tokens.Load() == 0 {
		t.Errorf("the driver sent no token request: credentials_file is not used")
	}

	const ttl = 90 * time.Second
	before := time.Now().UTC()
	raw, err := d.SignedURL(ctx, key, ttl)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	endpoint, _ := url.Parse(srv.Endpoint)
	if u.Scheme != "http" || u.Host != endpoint.Host || u.Path != "/"+cfg.Bucket+"/"+cfg.RootDirectory+"/"+key {
		t.Errorf("signed URL %s: want http://%s/%s/%s/%s", raw, endpoint.Host, cfg.Bucket, cfg.RootDirectory, key)
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Goog-Date"))
	if err != nil || signedAt.Before(before.Add(-time.Second).Truncate(time.Second)) || signedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("X-Goog-Date %q (%v) is not the signing time %v", q.Get("X-Goog-Date"), err, before)
	}
	wantCred := kf.Email + "/" + signedAt.Format("20060102") + "/auto/storage/goog4_request"
	for field, want := range map[string]string{
		"X-Goog-Algorithm":     "GOOG4-RSA-SHA256",
		"X-Goog-Credential":    wantCred,
		"X-Goog-Expires":       strconv.Itoa(int(ttl.Seconds())),
		"X-Goog-SignedHeaders": "host",
	} {
		if got := q.Get(field); got != want {
			t.Errorf("%s = %q; want %q", field, got, want)
		}
	}
	if err := verifyV4(u, kf); err != nil {
		t.Errorf("signature: %v", err)
	}
	tampered := *u
	tampered.Path, tampered.RawPath = strings.Replace(u.Path, "abcdef", "abcdee", 1), ""
	if err := verifyV4(&tampered, kf); err == nil {
		t.Errorf("the signature also verifies for another key: the check proves nothing")
	}

	// The emulator serves the URL (it does not check signatures:
	// gcstest.LimitSignedURLs, so the check above is what proves them).
	resp, err := http.Get(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET signed URL = %s %q; want 200 %q (%s)", resp.Status, got, body, gcstest.LimitSignedURLs)
	}

	cfg.Redirect = false
	off := newTestDriver(t, cfg)
	if _, err := off.SignedURL(ctx, key, time.Minute); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("SignedURL with redirect off: %v; want ErrUnsupported", err)
	}
}

// TestSignedURLExpiry: redirect_expiry caps the TTL a caller asks for
// (up to the V4 limit of 7 days) and is the TTL when none is given.
func TestSignedURLExpiry(t *testing.T) {
	srv := gcstest.Start(t)
	cfg := srv.Config(uniqueRoot("expiry"))
	cfg.Anonymous, cfg.CredentialsFile, cfg.Redirect = false, gcstest.NewKeyFile(t).Path, true
	cfg.RedirectExpiry = 7 * 24 * time.Hour
	d := newTestDriver(t, cfg)
	cfg.RedirectExpiry = 0 // the default, 20m
	short := newTestDriver(t, cfg)
	ctx := t.Context()
	key := "blobs/k"
	long, err := d.SignedURL(ctx, key, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if lu, _ := url.Parse(long); lu.Query().Get("X-Goog-Expires") != "604800" {
		t.Errorf("30-day TTL: X-Goog-Expires %q; want 604800", lu.Query().Get("X-Goog-Expires"))
	}
	capped, err := short.SignedURL(ctx, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cu, _ := url.Parse(capped); cu.Query().Get("X-Goog-Expires") != "1200" {
		t.Errorf("1h TTL under redirect_expiry 20m: X-Goog-Expires %q; want 1200", cu.Query().Get("X-Goog-Expires"))
	}
	def, err := short.SignedURL(ctx, key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if du, _ := url.Parse(def); du.Query().Get("X-Goog-Expires") != "1200" {
		t.Errorf("default TTL: X-Goog-Expires %q; want 1200 (redirect_expiry 20m)", du.Query().Get("X-Goog-Expires"))
	}
}

// verifyV4 rebuilds the V4 string to sign from the URL and checks its
// RSA-SHA256 signature with the service account's public key: a URL for
// another key, method, expiry or signer fails here.
func verifyV4(u *url.URL, kf *gcstest.KeyFile) error {
	q := u.Query()
	sig, err := hex.DecodeString(q.Get("X-Goog-Signature"))
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("X-Goog-Signature %q is not hex", q.Get("X-Goog-Signature"))
	}
	q.Del("X-Goog-Signature")
	canonical := strings.Join([]string{
		http.MethodGet,
		u.EscapedPath(),
		strings.ReplaceAll(q.Encode(), "+", "%20"),
		"host:" + u.Hostname(),
		"",
		"host",
		"UNSIGNED-PAYLOAD",
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	scope := strings.TrimPrefix(q.Get("X-Goog-Credential"), kf.Email+"/")
	toSign := strings.Join([]string{"GOOG4-RSA-SHA256", q.Get("X-Goog-Date"), scope, hex.EncodeToString(sum[:])}, "\n")
	digest := sha256.Sum256([]byte(toSign))
	return rsa.VerifyPKCS1v15(kf.Public, crypto.SHA256, digest[:], sig)
}
