package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/auth/htpasswd"
)

func TestAuthConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"realm without path", "auth:\n  htpasswd:\n    realm: x\n", nil, []string{"auth.htpasswd.realm: set auth.htpasswd.path too"}},
		{"policy without credentials", "auth:\n  access:\n    rules:\n      - repository: a/**\n        users: [x]\n        actions: [pull]\n", nil,
			[]string{"auth.access: a policy needs credentials"}},
		{"bad rules, all reported", "auth:\n  htpasswd:\n    path: /x\n  access:\n    rules:\n      - repository: a/**\n        actions: [pull]\n      - repository: b/**\n        groups: [nope]\n        actions: [write]\n", nil,
			[]string{"auth.access.rules[0]: names nobody", `auth.access.rules[1].groups[0]: group "nope"`, `auth.access.rules[1].actions[0]: unknown action "write"`}},
		{"explicit empty realm", "auth:\n  htpasswd:\n    path: /x\n    realm: \"\"\n", nil, []string{"auth.htpasswd.realm: a zero or empty value is not valid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.yaml), tc.env, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
	cfg, err := loadConfig("", []string{"STRATUS_AUTH_HTPASSWD_PATH=/etc/htpasswd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Htpasswd.Path != "/etc/htpasswd" || cfg.Auth.Htpasswd.Realm != defaultRealm || !cfg.Auth.enabled() {
		t.Errorf("from the environment: %+v", cfg.Auth.Htpasswd)
	}
}

func TestHtpasswdAddCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	for _, pw := range []string{"first-pw", "second-pw"} {
		var out bytes.Buffer
		app := newApp(&out, &out, nil)
		app.Reader = strings.NewReader(pw + "\n")
		if err := app.Run([]string{"stratus", "htpasswd", "add", "--cost", "4", "--file", file, "alice"}); err != nil {
			t.Fatalf("htpasswd add: %v (%s)", err, out.String())
		}
		if strings.Contains(out.String(), pw) {
			t.Error("the password was printed")
		}
	}
	f, err := htpasswd.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Users() != 1 || f.Authenticate(context.Background(), "alice", "second-pw") != nil {
		t.Error("the second add did not replace the first")
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), "second-pw") {
		t.Error("the password is stored in the clear")
	}
	for _, args := range [][]string{
		{"stratus", "htpasswd", "add", "--file", file},                        // no user
		{"stratus", "htpasswd", "add", "--file", file, "--cost", "99", "bob"}, // bad cost
		{"stratus", "htpasswd", "add", "--file", file, "bob"},                 // empty stdin
	} {
		app := newApp(&bytes.Buffer{}, &bytes.Buffer{}, nil)
		app.Reader = strings.NewReader("")
		if err := app.Run(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
