package main

import (
	"strings"
	"testing"
	"time"
)

func TestPoliciesConfig(t *testing.T) {
	const file = `
policies:
  immutable_tags:
    - repository: "prod/**"
      tags: ["v*"]
  retention:
    - repository: "ci/**"
      keep_newest: 10
      keep_tags: ["release-*"]
      delete_older_than: 720h
      keep_untagged_for: 48h
`
	for _, tc := range []struct {
		name    string
		file    string
		env     []string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "file", file: file, check: func(t *testing.T, c *Config) {
			r := c.Policies.Retention
			if len(c.Policies.ImmutableTags) != 1 || len(r) != 1 || r[0].KeepNewest != 10 || r[0].DeleteOlderThan != 720*time.Hour || r[0].KeepUntaggedFor != 48*time.Hour {
				t.Fatalf("parsed %+v", c.Policies)
			}
			p, err := c.Policies.build()
			if err != nil || p.tags == nil || p.retention == nil {
				t.Fatalf("build: %+v %v", p, err)
			}
			if rule, ok := p.tags.Immutable("prod/app", "v1"); !ok || !strings.Contains(rule, "prod/**") {
				t.Fatalf("prod/app:v1 not immutable (%q)", rule)
			}
		}},
		{name: "env", env: []string{
			`STRATUS_POLICIES_IMMUTABLE_TAGS=[{"repository":"prod/**","tags":["v*"],"allow_delete":true}]`,
			`STRATUS_POLICIES_RETENTION=[{"repository":"ci/**","keep_newest":3}]`,
		}, check: func(t *testing.T, c *Config) {
			if !c.Policies.ImmutableTags[0].AllowDelete || c.Policies.Retention[0].KeepNewest != 3 {
				t.Fatalf("parsed %+v", c.Policies)
			}
		}},
		{name: "none", check: func(t *testing.T, c *Config) {
			p, err := c.Policies.build()
			if err != nil || p.tags != nil || p.retention != nil {
				t.Fatalf("build without rules: %+v %v", p, err)
			}
		}},
		{name: "every error at once", file: `
policies:
  immutable_tags:
    - repository: "prod/["
      tags: []
  retention:
    - repository: ""
      keep_newest: -2
      keep_untagged_for: 1m
`, wantErr: []string{
			"policies.immutable_tags[0].repository", "policies.immutable_tags[0].tags",
			"policies.retention[0].repository", "policies.retention[0].keep_newest",
			"policies.retention[0].keep_untagged_for: 1m0s is shorter than the grace period",
		}},
		{name: "unknown rule key", env: []string{`STRATUS_POLICIES_RETENTION=[{"repository":"ci/**","keep_last":3}]`},
			wantErr: []string{"STRATUS_POLICIES_RETENTION", "keep_last"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeConfig(t, tc.file)
			}
			cfg, err := loadConfig(path, tc.env, nil)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("config accepted")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}
