package notifications

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// SignatureHeader is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
	SignatureHeader = "X-Stratus-Signature"
	// TimestampHeader is the Unix time of the attempt, in seconds; it is
	// signed, so a receiver that refuses old timestamps refuses replays.
	TimestampHeader = "X-Stratus-Timestamp"
	// EventIDHeader repeats the event id, so a receiver can drop
	// duplicates (delivery is at least once) without parsing the body.
	EventIDHeader = "X-Stratus-Event-Id"
)

const signaturePrefix = "sha256="

// Sign returns the signature header value of body sent at unix time ts.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("notifications: signature does not match")
	ErrStale        = errors.New("notifications: timestamp outside the accepted window")
)

// Verify checks a delivery's signature and that its timestamp is within
// tolerance of now. Receivers written in Go can call it; README.md shows
// the same check with the standard library only.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(h.Get(TimestampHeader), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not a Unix time", ErrBadSignature, TimestampHeader)
	}
	sig := h.Get(SignatureHeader)
	if !strings.HasPrefix(sig, signaturePrefix) || !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	return nil
}
