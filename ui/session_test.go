package ui

import (
	"strings"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	s, err := newSessions(key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	good, _ := s.issue("alice")
	other, _ := newSessions([]byte(strings.Repeat("x", 32)), time.Hour)
	foreign, _ := other.issue("alice")
	parts := strings.Split(good, ".")
	tests := []struct {
		name, value string
		later       time.Duration
		wantUser    string
	}{
		{"valid", good, 0, "alice"},
		{"expired", good, time.Hour, ""},
		{"other key", foreign, 0, ""},
		{"user swapped", b64.EncodeToString([]byte("admin")) + "." + parts[1] + "." + parts[2], 0, ""},
		{"expiry extended", parts[0] + ".9999999999." + parts[2], 0, ""},
		{"truncated", parts[0] + "." + parts[1], 0, ""},
		{"empty", "", 0, ""},
		{"garbage", "a.b.c", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.now = func() time.Time { return now.Add(tt.later) }
			user, ok := s.verify(tt.value)
			if user != tt.wantUser || ok != (tt.wantUser != "") {
				t.Errorf("verify: %q %v, want %q", user, ok, tt.wantUser)
			}
		})
	}
	if tok := s.csrf("s:" + good); !s.checkCSRF("s:"+good, tok) || s.checkCSRF("s:"+foreign, tok) || s.checkCSRF("", tok) || s.checkCSRF("s:"+good, "") {
		t.Error("CSRF tokens are not bound to their session")
	}
	if _, err := newSessions([]byte("short"), time.Hour); err == nil {
		t.Error("a short key is accepted")
	}
}

// FuzzSessionVerify: no cookie value verifies unless this key issued it,
// and whatever verifies names a bounded, non-empty user.
func FuzzSessionVerify(f *testing.F) {
	s, _ := newSessions([]byte(strings.Repeat("k", 32)), time.Hour)
	good, _ := s.issue("alice")
	for _, seed := range []string{good, "", "..", "YQ.1.x", good + "x", strings.Replace(good, "YWxpY2U", "Ym9i", 1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		user, ok := s.verify(v)
		if !ok {
			return
		}
		if v != good {
			// Only a forged MAC could verify a value this test did not
			// issue (the only one issued is good).
			t.Fatalf("%q verifies as %q", v, user)
		}
		if user == "" || len(user) > maxUserLen {
			t.Fatalf("bad user %q", user)
		}
	})
}
