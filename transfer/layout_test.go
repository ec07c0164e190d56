package transfer

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseIndex(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	entry := func(digest, repo, tag string, size string) string {
		ann := `"io.stratus.repository":"` + repo + `"`
		if tag != "" {
			ann += `,"org.opencontainers.image.ref.name":"` + tag + `"`
		}
		return `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest + `","size":` + size + `,"annotations":{` + ann + `}}`
	}
	index := func(entries ...string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + strings.Join(entries, ",") + `]}`
	}
	cases := []struct {
		name    string
		in      string
		entries int
		err     string // "" for success
	}{
		{"tagged and untagged", index(entry(d1, "a/b", "v1", "10"), entry(d2, "a/b", "", "10")), 2, ""},
		{"same tag twice, same digest", index(entry(d1, "a", "v1", "10"), entry(d1, "a", "v1", "10")), 2, ""},
		{"empty", index(), 0, ""},
		{"same tag, two digests", index(entry(d1, "a", "v1", "10"), entry(d2, "a", "v1", "10")), 0, "listed twice"},
		{"unknown field", `{"schemaVersion":2,"manifests":[],"extra":1}`, 0, "unknown field"},
		{"trailing data", index() + `{}`, 0, "after the JSON"},
		{"schema version", `{"schemaVersion":1,"manifests":[]}`, 0, "schemaVersion 1"},
		{"wrong media type", `{"schemaVersion":2,"mediaType":"text/plain","manifests":[]}`, 0, "mediaType"},
		{"bad digest", index(entry("sha256:../../etc/passwd", "a", "v1", "10")), 0, "digest"},
		{"unsupported algorithm", index(entry("md5:d41d8cd98f00b204e9800998ecf8427e", "a", "v1", "10")), 0, "unsupported"},
		{"no repository", index(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d1 + `","size":10}`), 0, "io.stratus.repository"},
		{"bad repository", index(entry(d1, "../x", "v1", "10")), 0, "not a repository name"},
		{"bad tag", index(entry(d1, "a", "-v1", "10")), 0, "not a tag"},
		{"zero size", index(entry(d1, "a", "v1", "0")), 0, "outside"},
		{"oversized", index(entry(d1, "a", "v1", "99999999999")), 0, "outside"},
		{"not a manifest", index(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + d1 + `","size":10,"annotations":{"io.stratus.repository":"a"}}`), 0, "not a manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := parseIndex([]byte(tc.in), maxManifest)
			if tc.err == "" {
				if err != nil || len(entries) != tc.entries {
					t.Fatalf("got %d entries, %v; want %d", len(entries), err, tc.entries)
				}
				return
			}
			if !errors.Is(err, ErrLayoutInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v; want ErrLayoutInvalid mentioning %q", err, tc.err)
			}
		})
	}
}

func TestParseLayoutFile(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{"imageLayoutVersion":"1.0.0"}`, true},
		{`{"imageLayoutVersion":"1.1.0"}`, false},
		{`{"imageLayoutVersion":"1.0.0","x":1}`, false},
		{`not json`, false},
	}
	for _, tc := range cases {
		if err := parseLayoutFile([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("parseLayoutFile(%s) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

func TestTarSourceRefusesUnsafeMembers(t *testing.T) {
	cases := []struct {
		name string
		hdr  tar.Header
		want string
	}{
		{"parent directory", tar.Header{Name: "../index.json", Typeflag: tar.TypeReg, Size: 2}, "escapes the layout"},
		{"absolute path", tar.Header{Name: "/etc/index.json", Typeflag: tar.TypeReg, Size: 2}, "escapes the layout"},
		{"symlink", tar.Header{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, "not a regular file"},
		{"hard link", tar.Header{Name: "index.json", Typeflag: tar.TypeLink, Linkname: "oci-layout"}, "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "evil.tar")
			f, err := os.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			tw := tar.NewWriter(f)
			hdr := tc.hdr
			if err := tw.WriteHeader(&hdr); err != nil {
				t.Fatal(err)
			}
			if hdr.Size > 0 {
				tw.Write([]byte("{}"))
			}
			tw.Close()
			f.Close()
			_, err = openSource(name)
			if !errors.Is(err, ErrLayoutInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("openSource: %v; want ErrLayoutInvalid mentioning %q", err, tc.want)
			}
		})
	}
}
