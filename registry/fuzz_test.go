package registry

import (
	"errors"
	"strings"
	"testing"
)

// The fuzz targets check that parsers of untrusted input never panic and
// that what they accept satisfies the invariants the storage layout relies on.

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/x", "/v2/a/blobs/uploads/", "/v2/%2e%2e/tags/list", "/v2/a/blobs/blobs/uploads/u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt := parseRoute(path)
		if rt.kind != routeNone && rt.kind != routeBase && rt.kind != routeCatalog && validName(rt.name) {
			if !strings.HasPrefix(path, "/v2/"+rt.name+"/") {
				t.Fatalf("name %q is not the path's prefix in %q", rt.name, path)
			}
		}
	})
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "..", "a/../b", "a__b", "a--b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validName(name) {
			return
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || c[0] == '_' || c[0] == '.' || c[0] == '-' {
				t.Fatalf("accepted %q with component %q", name, c)
			}
		}
		if strings.ContainsAny(name, "%\\\x00 ") {
			t.Fatalf("accepted %q", name)
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"latest", "sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("b", 128), "x:y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			return
		}
		if ref.String() != s {
			t.Fatalf("round trip %q -> %q", s, ref.String())
		}
		if ref.Tag == "" {
			if _, err := newHash(ref.Digest.Algorithm()); err != nil {
				t.Fatalf("accepted digest with algorithm %q", ref.Digest.Algorithm())
			}
			if strings.ContainsAny(ref.Digest.Encoded(), "/.") {
				t.Fatalf("digest hex %q unsafe in keys", ref.Digest.Encoded())
			}
		} else if strings.ContainsAny(ref.Tag, "/:") {
			t.Fatalf("tag %q unsafe in keys", ref.Tag)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "10-20", "bytes 1-2/*", "5-1", "-", "0-9223372036854775807", "bytes 0-9223372036854775807/*", "0-70368744177663"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err != nil {
			return
		}
		// What the upload handler computes must not overflow.
		if start < 0 || end < start || end >= maxBlobOffset || end-start+1 <= 0 || end-start+1 > maxBlobOffset {
			t.Fatalf("%q -> %d-%d", s, start, end)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-10", int64(100))
	f.Add("bytes=-5", int64(3))
	f.Add("bytes=50-", int64(10))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		r, ok, err := parseRange(h, size)
		if err != nil {
			if !errors.Is(err, errRangeUnsatisfiable) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if ok && (r.start < 0 || r.length <= 0 || r.start+r.length > size) {
			t.Fatalf("%q on %d -> %+v", h, size, r)
		}
	})
}
