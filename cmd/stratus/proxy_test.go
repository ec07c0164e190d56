package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProxyConfig(t *testing.T) {
	for _, tc := range []struct {
		desc string
		yaml string
		env  []string
		want []string // error substrings; none means valid
	}{
		{desc: "file", yaml: "proxy:\n  upstreams:\n    - {prefix: hub, url: \"https://registry-1.docker.io\", root: true}\n    - {prefix: ghcr, url: \"https://ghcr.io\", ttl: 1h}\n"},
		{desc: "environment", env: []string{`STRATUS_PROXY_UPSTREAMS=[{prefix: hub, url: "https://registry-1.docker.io"}]`}},
		{desc: "every problem with its key path",
			yaml: "proxy:\n  lease_wait: -1s\n  upstreams:\n    - {prefix: Bad, url: \"ftp://x\"}\n    - {prefix: b, url: \"https://x.io\", password: p}\n",
			want: []string{"proxy.lease_wait", "proxy.upstreams[0].prefix", "proxy.upstreams[0].url", "proxy.upstreams[1].username"}},
		{desc: "unknown key", yaml: "proxy:\n  upstreams:\n    - {prefix: a, url: \"https://x.io\", pasword: p}\n", want: []string{"pasword"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := loadConfig(path, tc.env, nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range cfg.Proxy.Upstreams {
					if u.TTL <= 0 || (u.Prefix == "hub" && u.TTL != 5*time.Minute) {
						t.Fatalf("ttl of %s = %v", u.Prefix, u.TTL)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
