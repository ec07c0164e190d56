package notifications

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestSignKnownAnswer(t *testing.T) {
	// HMAC-SHA256(key "secret", "1700000000.{}") computed independently
	// (printf '1700000000.{}' | openssl dgst -sha256 -hmac secret).
	const want = "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	if got := Sign([]byte("secret"), 1700000000, []byte("{}")); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"events":[]}`)
	now := time.Unix(1_800_000_000, 0)
	headers := func(ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set(TimestampHeader, strconv.FormatInt(ts, 10))
		if sig != "" {
			h.Set(SignatureHeader, sig)
		}
		return h
	}
	ts := now.Unix()
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"valid", headers(ts, Sign(secret, ts, body)), body, nil},
		{"valid within tolerance", headers(ts-299, Sign(secret, ts-299, body)), body, nil},
		{"wrong secret", headers(ts, Sign([]byte("other"), ts, body)), body, ErrBadSignature},
		{"body changed", headers(ts, Sign(secret, ts, body)), []byte(`{"events":[1]}`), ErrBadSignature},
		{"timestamp changed", headers(ts+1, Sign(secret, ts, body)), body, ErrBadSignature},
		{"replayed later", headers(ts-301, Sign(secret, ts-301, body)), body, ErrStale},
		{"from the future", headers(ts+301, Sign(secret, ts+301, body)), body, ErrStale},
		{"no signature", headers(ts, ""), body, ErrBadSignature},
		{"no sha256 prefix", headers(ts, Sign(secret, ts, body)[7:]), body, ErrBadSignature},
		{"no timestamp", http.Header{SignatureHeader: {Sign(secret, ts, body)}}, body, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(secret, tt.h, tt.body, now, 5*time.Minute)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzVerify: arbitrary headers and bodies never panic, and a body is
// accepted only with the signature computed over it.
func FuzzVerify(f *testing.F) {
	secret := []byte("k")
	f.Add("1800000000", Sign(secret, 1800000000, []byte("{}")), []byte("{}"))
	f.Add("", "", []byte(nil))
	f.Add("-1", "sha256=zz", []byte("x"))
	f.Add("99999999999999999999", "sha256=", []byte("{"))
	now := time.Unix(1800000000, 0)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(TimestampHeader, ts)
		h.Set(SignatureHeader, sig)
		if Verify(secret, h, body, now, time.Hour) != nil {
			return
		}
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || sig != Sign(secret, n, body) {
			t.Fatalf("accepted ts=%q sig=%q for a body it does not sign", ts, sig)
		}
	})
}
