package proxycache

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Upstream{Prefix: "hub", URL: "https://registry-1.docker.io"}
	for _, tc := range []struct {
		desc string
		ups  []Upstream
		cfg  func(*Config)
		want []string // substrings, all expected
	}{
		{desc: "valid", ups: []Upstream{ok, {Prefix: "ghcr", URL: "https://ghcr.io", Username: "u", Password: "p", TTL: time.Hour}}},
		{desc: "missing prefix and url", ups: []Upstream{{}}, want: []string{"proxy.upstreams[0].prefix: is required", "proxy.upstreams[0].url: is required"}},
		{desc: "prefix with slash", ups: []Upstream{{Prefix: "a/b", URL: "https://x.io"}}, want: []string{"upstreams[0].prefix"}},
		{desc: "upper-case prefix", ups: []Upstream{{Prefix: "Hub", URL: "https://x.io"}}, want: []string{"upstreams[0].prefix"}},
		{desc: "duplicate prefix", ups: []Upstream{ok, {Prefix: "hub", URL: "https://ghcr.io"}}, want: []string{"upstreams[1].prefix: \"hub\" is already"}},
		{desc: "docker aliases are one host", ups: []Upstream{ok, {Prefix: "d2", URL: "https://index.docker.io"}}, want: []string{"upstreams[1].url: host index.docker.io is already mirrored"}},
		{desc: "bad scheme", ups: []Upstream{{Prefix: "a", URL: "ftp://x"}}, want: []string{"scheme must be http or https"}},
		{desc: "path in url", ups: []Upstream{{Prefix: "a", URL: "https://x.io/v2"}}, want: []string{"give only scheme and host"}},
		{desc: "credentials in url", ups: []Upstream{{Prefix: "a", URL: "https://u:p@x.io"}}, want: []string{"must not carry credentials"}},
		{desc: "password without username", ups: []Upstream{{Prefix: "a", URL: "https://x.io", Password: "p"}}, want: []string{"upstreams[0].username: is required"}},
		{desc: "username without password", ups: []Upstream{{Prefix: "a", URL: "https://x.io", Username: "u"}}, want: []string{"upstreams[0].password: is required"}},
		{desc: "both password and file", ups: []Upstream{{Prefix: "a", URL: "https://x.io", Username: "u", Password: "p", PasswordFile: "/f"}}, want: []string{"password_file: set password or password_file"}},
		{desc: "negative ttl", ups: []Upstream{{Prefix: "a", URL: "https://x.io", TTL: -time.Second}}, want: []string{"upstreams[0].ttl: must not be negative"}},
		{desc: "two roots", ups: []Upstream{{Prefix: "a", URL: "https://x.io", Root: true}, {Prefix: "b", URL: "https://y.io", Root: true}}, want: []string{"upstreams[1].root"}},
		{desc: "negative waits", cfg: func(c *Config) { c.LeaseWait, c.FetchTimeout = -1, -1 }, want: []string{"proxy.lease_wait", "proxy.fetch_timeout"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := Config{Upstreams: tc.ups}
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			err := c.Validate("proxy")
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	u := Upstream{Prefix: "a", Password: "hunter2"}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "password", u.Password, "upstream", u)
	out := sb.String() + fmt.Sprintf("%v %+v %s", u, u, u.Password)
	if strings.Contains(out, "hunter2") {
		t.Fatalf("secret printed: %s", out)
	}
}

func TestPasswordFileAndEnvList(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ups Upstreams
	if err := ups.UnmarshalText([]byte(`[{prefix: hub, url: "https://registry-1.docker.io", username: u, password_file: "` + f + `", ttl: 1m}]`)); err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || ups[0].TTL != time.Minute || ups[0].Username != "u" {
		t.Fatalf("parsed %+v", ups)
	}
	pw, err := ups[0].password()
	if err != nil || pw != "s3cret" {
		t.Fatalf("password() = %q, %v", pw, err)
	}
	if err := ups.UnmarshalText([]byte(`[{prefix: hub, bogus: 1}]`)); err == nil {
		t.Fatal("unknown key accepted")
	}
}
