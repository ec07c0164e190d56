package transfer

import (
	"strings"
	"testing"
)

func FuzzParseIndex(f *testing.F) {
	seeds := []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":10,"annotations":{"io.stratus.repository":"a/b","org.opencontainers.image.ref.name":"v1"}}]}`,
		`{"schemaVersion":2,"manifests":[]}`,
		`{"schemaVersion":2,"manifests":[{"digest":"sha256:../../etc"}]}`,
		`{"schemaVersion":1}`,
		`{}`,
		`[]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseIndex(b, maxManifest)
		if err != nil {
			return
		}
		for _, e := range entries {
			p := blobPath(e.Descriptor.Digest)
			if clean, ok := cleanMember(p); !ok || clean != p || strings.Contains(p, "..") {
				t.Fatalf("accepted entry maps to unsafe path %q", p)
			}
			if e.Descriptor.Size <= 0 || e.Descriptor.Size > maxManifest {
				t.Fatalf("accepted size %d", e.Descriptor.Size)
			}
		}
	})
}

func TestCleanMember(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"index.json", "index.json", true},
		{"./blobs/sha256/ab", "blobs/sha256/ab", true},
		{"/etc/passwd", "", false},
		{"blobs/../../x", "", false},
		{"..", "", false},
		{`blobs\x`, "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		got, ok := cleanMember(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("cleanMember(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
