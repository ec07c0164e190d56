package auth

import (
	"encoding/base64"
	"strings"
	"testing"
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestParseAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   credentials
		bad    bool
	}{
		{"none", nil, credentials{}, false},
		{"basic", []string{basic("alice", "pw")}, credentials{scheme: schemeBasic, user: "alice", password: "pw"}, false},
		{"basic password with colon", []string{basic("alice", "a:b")}, credentials{scheme: schemeBasic, user: "alice", password: "a:b"}, false},
		{"basic empty password", []string{basic("alice", "")}, credentials{scheme: schemeBasic, user: "alice"}, false},
		{"scheme case", []string{"bAsIc " + base64.StdEncoding.EncodeToString([]byte("u:p"))}, credentials{scheme: schemeBasic, user: "u", password: "p"}, false},
		{"bearer", []string{"Bearer eyJ.a-b_c.d~+/=="}, credentials{scheme: schemeBearer, token: "eyJ.a-b_c.d~+/=="}, false},
		{"basic no colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, credentials{}, true},
		{"basic empty user", []string{basic("", "pw")}, credentials{}, true},
		{"basic bad base64", []string{"Basic !!!"}, credentials{}, true},
		{"bearer with space", []string{"Bearer a b"}, credentials{}, true},
		{"bearer quote", []string{`Bearer a"b`}, credentials{}, true},
		{"bearer empty", []string{"Bearer ="}, credentials{}, true},
		{"scheme only", []string{"Bearer"}, credentials{}, true},
		{"unknown scheme", []string{"Digest x"}, credentials{}, true},
		{"two headers", []string{basic("a", "b"), basic("c", "d")}, credentials{}, true},
		{"too long", []string{"Bearer " + strings.Repeat("a", maxAuthorization)}, credentials{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAuthorization(tc.values)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{basic("alice", "pw"), "Bearer abc.def.ghi", "Basic ", "bearer ==", "Basic Og==", "Negotiate x", "Basic  YTpi  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseAuthorization([]string{v})
		if err != nil {
			if c != (credentials{}) {
				t.Fatalf("error with credentials %+v", c)
			}
			if err != errMalformed {
				t.Fatalf("error %v is not the fixed errMalformed (it must never quote the header)", err)
			}
			return
		}
		switch c.scheme {
		case schemeBasic:
			if c.user == "" || strings.Contains(c.user, ":") || c.token != "" {
				t.Fatalf("basic credentials %+v", c)
			}
		case schemeBearer:
			if !b64token(c.token) || c.user != "" || strings.ContainsAny(c.token, " \"\\") {
				t.Fatalf("bearer credentials %+v", c)
			}
		default:
			t.Fatalf("a non-empty header parsed as no credentials: %q", v)
		}
	})
}
