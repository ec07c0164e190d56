package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestTransferCommands drives export and import in-process: argument
// errors, and an empty store exported and imported through a tar.
func TestTransferCommands(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(t.TempDir(), "empty.tar")
	cases := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"export needs OUT", []string{"export", "--root", root}, "want exactly one OUT", ""},
		{"import needs IN", []string{"import", "--root", root}, "want exactly one IN", ""},
		{"bad glob", []string{"export", "--root", root, "--tag", "[x", archive + ".bad.tar"}, "invalid pattern", ""},
		{"export empty store", []string{"export", "--root", root, archive}, "", "exported 0 repositories, 0 tags"},
		{"import it", []string{"import", "--root", t.TempDir(), archive}, "", "imported 0, already present 0"},
		{"import a missing layout", []string{"import", "--root", root, archive + ".missing"}, "open layout", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := newApp(&out, &errOut, nil).RunContext(context.Background(), append([]string{"stratus"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("err %v, output %q; want %q", err, out.String(), tc.wantOut)
			}
		})
	}
}
