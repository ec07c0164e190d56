package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	sessionCookie = "stratus_ui_session"
	// csrfCookie carries a random nonce for visitors without a session,
	// so the login form (and, without auth, the delete form) has a CSRF
	// token bound to something the attacker's page cannot read or set.
	csrfCookie = "stratus_ui_csrf"
	// MinSessionKey is the shortest accepted HMAC key.
	MinSessionKey = 32
	maxUserLen    = 256
)

// sessions signs and checks session cookies and CSRF tokens. A session is
// the user name and its expiry, HMAC-SHA256 signed: replicas that share
// the key accept each other's sessions without shared state.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func newSessions(key []byte, ttl time.Duration) (*sessions, error) {
	if key == nil {
		key = make([]byte, MinSessionKey)
		rand.Read(key)
	}
	if len(key) < MinSessionKey {
		return nil, errors.New("ui: the session key must have at least 32 bytes")
	}
	if ttl <= 0 {
		return nil, errors.New("ui: the session lifetime must be positive")
	}
	return &sessions{key: key, ttl: ttl, now: time.Now}, nil
}

func (s *sessions) mac(parts ...string) []byte {
	h := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		// Length-prefixed, so no two part lists hash the same input.
		h.Write([]byte(strconv.Itoa(len(p)) + ":" + p))
	}
	return h.Sum(nil)
}

var b64 = base64.RawURLEncoding

// issue returns a cookie value for user and when it expires.
func (s *sessions) issue(user string) (string, time.Time) {
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	u := b64.EncodeToString([]byte(user))
	e := strconv.FormatInt(exp.Unix(), 10)
	return u + "." + e + "." + b64.EncodeToString(s.mac("session", u, e)), exp
}

// verify returns the user of a valid, unexpired cookie value.
func (s *sessions) verify(v string) (string, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return "", false
	}
	if !s.checkMAC(parts[2], "session", parts[0], parts[1]) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return "", false
	}
	user, err := b64.DecodeString(parts[0])
	if err != nil || len(user) == 0 || len(user) > maxUserLen {
		return "", false
	}
	return string(user), true
}

// csrf is the token forms carry, bound to binding (the session cookie, or
// the pre-session nonce).
func (s *sessions) csrf(binding string) string {
	return b64.EncodeToString(s.mac("csrf", binding))
}

func (s *sessions) checkCSRF(binding, token string) bool {
	return binding != "" && s.checkMAC(token, "csrf", binding)
}

// checkMAC reports whether sig is the MAC of parts in its one canonical
// encoding (the decoder would also accept line breaks inside it).
func (s *sessions) checkMAC(sig string, parts ...string) bool {
	return sig != "" && hmac.Equal([]byte(sig), []byte(b64.EncodeToString(s.mac(parts...))))
}

// visitor is who is asking, as the cookies say.
type visitor struct {
	user string // "" when not signed in
	// binding is what the CSRF token is bound to; "" when the visitor has
	// no cookie yet (the page sets a nonce cookie).
	binding string
}

func (s *sessions) visitor(r *http.Request) visitor {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if user, ok := s.verify(c.Value); ok {
			return visitor{user: user, binding: "s:" + c.Value}
		}
	}
	if c, err := r.Cookie(csrfCookie); err == nil && validNonce(c.Value) {
		return visitor{binding: "n:" + c.Value}
	}
	return visitor{}
}

func validNonce(v string) bool {
	b, err := b64.DecodeString(v)
	return err == nil && len(b) == 16
}

// ensureBinding gives a visitor without any cookie a nonce cookie, so the
// forms of the page being rendered carry a token that the next POST can
// check.
func ensureBinding(w http.ResponseWriter, r *http.Request, v *visitor) {
	if v.binding != "" {
		return
	}
	n := make([]byte, 16)
	rand.Read(n)
	val := b64.EncodeToString(n)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: val, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	v.binding = "n:" + val
}

func (s *sessions) setSession(w http.ResponseWriter, r *http.Request, user string) {
	val, exp := s.issue(user)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: val, Path: Prefix, Expires: exp,
		MaxAge: int(s.ttl / time.Second), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}
