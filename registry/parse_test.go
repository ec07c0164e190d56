package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"library/ubuntu", true},
		{"a.b_c__d-e---f/g0", true},
		{"team/tags", true},
		{"a/blobs/uploads", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"", false},
		{"A", false},
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"..", false},
		{"a/../b", false},
		{"a/./b", false},
		{"%2e%2e", false},
		{"a%2fb", false},
		{"_a", false},
		{"a/_tags", false},
		{"a___b", false},
		{"a..b", false},
		{"a.-b", false},
		{"a-", false},
		{"a b", false},
		{"a\\b", false},
	} {
		if got := validName(tc.name); got != tc.ok {
			t.Errorf("validName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestParseReference(t *testing.T) {
	hex64 := strings.Repeat("a", 64)
	for _, tc := range []struct {
		in      string
		tag     string
		digest  string
		wantErr bool
	}{
		{in: "latest", tag: "latest"},
		{in: "_x.Y-1", tag: "_x.Y-1"},
		{in: strings.Repeat("t", 128), tag: strings.Repeat("t", 128)},
		{in: strings.Repeat("t", 129), wantErr: true},
		{in: ".x", wantErr: true},
		{in: "-x", wantErr: true},
		{in: "a/b", wantErr: true},
		{in: "", wantErr: true},
		{in: "sha256:" + hex64, digest: "sha256:" + hex64},
		{in: "sha512:" + strings.Repeat("0", 128), digest: "sha512:" + strings.Repeat("0", 128)},
		{in: "sha256:" + strings.ToUpper(hex64), wantErr: true},
		{in: "sha256:" + hex64[:63], wantErr: true},
		{in: "md5:" + hex64[:32], wantErr: true},
		{in: "sha256:", wantErr: true},
		{in: ":" + hex64, wantErr: true},
		{in: "sha256:" + hex64[:62] + "zz", wantErr: true},
	} {
		ref, err := ParseReference(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseReference(%q) = %+v, want error", tc.in, ref)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		if ref.Tag != tc.tag || (tc.digest != "" && ref.Digest.String() != tc.digest) {
			t.Errorf("ParseReference(%q) = %+v", tc.in, ref)
		}
	}
	if _, err := ParseDigest("blake3:" + hex64); !errors.Is(err, errDigestAlgorithm) {
		t.Errorf("unknown algorithm: err = %v, want errDigestAlgorithm", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in         string
		start, end int64
		wantErr    bool
	}{
		{in: "0-0", start: 0, end: 0},
		{in: "0-99", start: 0, end: 99},
		{in: "100-199", start: 100, end: 199},
		{in: "bytes 100-199/*", start: 100, end: 199},
		{in: "bytes=5-9", start: 5, end: 9},
		{in: "9-5", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "5-", wantErr: true},
		{in: "a-b", wantErr: true},
		{in: "+1-2", wantErr: true},
		{in: "1 - 2", wantErr: true},
		{in: "99999999999999999999-1", wantErr: true},
		{in: "0-9223372036854775807", wantErr: true},
		{in: "bytes 0-9223372036854775807/*", wantErr: true},
		{in: "10-9223372036854775807", wantErr: true},
		{in: "9223372036854775807-9223372036854775807", wantErr: true},
		{in: "0-70368744177663", start: 0, end: 1<<46 - 1},
		{in: "0-70368744177664", wantErr: true},
		{in: "", wantErr: true},
	} {
		s, e, err := parseContentRange(tc.in)
		if tc.wantErr != (err != nil) || (!tc.wantErr && (s != tc.start || e != tc.end)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tc.in, s, e, err)
		}
	}
}

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		in            string
		ok            bool
		start, length int64
		wantErr       bool
	}{
		{in: ""},
		{in: "items=0-5"},
		{in: "bytes=0-1,5-6"},
		{in: "bytes=500-1499", ok: true, start: 500, length: 500},
		{in: "bytes=500-", ok: true, start: 500, length: 500},
		{in: "bytes=-500", ok: true, start: 500, length: 500},
		{in: "bytes=-5000", ok: true, start: 0, length: 1000},
		{in: "bytes=0-0", ok: true, start: 0, length: 1},
		{in: "bytes=999-999", ok: true, start: 999, length: 1},
		{in: "bytes=500-0", wantErr: true},
		{in: "bytes=1000-", wantErr: true},
		{in: "bytes=5000-10000", wantErr: true},
		{in: "bytes=-0", wantErr: true},
		{in: "bytes=x-1", wantErr: true},
		{in: "bytes=5", wantErr: true},
	} {
		r, ok, err := parseRange(tc.in, size)
		if tc.wantErr {
			if !errors.Is(err, errRangeUnsatisfiable) {
				t.Errorf("parseRange(%q): err = %v, want unsatisfiable", tc.in, err)
			}
			continue
		}
		if err != nil || ok != tc.ok || (ok && (r.start != tc.start || r.length != tc.length)) {
			t.Errorf("parseRange(%q) = %+v, %v, %v", tc.in, r, ok, err)
		}
	}
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path string
		kind routeKind
		name string
		arg  string
	}{
		{"/v2/", routeBase, "", ""},
		{"/v2", routeBase, "", ""},
		{"/v2/_catalog", routeCatalog, "", ""},
		{"/v2/a/b/tags/list", routeTags, "a/b", ""},
		{"/v2/a/manifests/latest", routeManifest, "a", "latest"},
		{"/v2/a/blobs/sha256:x", routeBlob, "a", "sha256:x"},
		{"/v2/a/blobs/uploads/", routeUploadStart, "a", ""},
		{"/v2/a/blobs/uploads", routeUploadStart, "a", ""},
		{"/v2/a/blobs/uploads/abc", routeUpload, "a", "abc"},
		{"/v2/a/blobs/blobs/x", routeBlob, "a/blobs", "x"},
		{"/v2/a/manifests/manifests/x", routeManifest, "a/manifests", "x"},
		{"/v2/a/referrers/sha256:x", routeReferrers, "a", "sha256:x"},
		{"/v2/%2e%2e/manifests/x", routeManifest, "%2e%2e", "x"},
		{"/v3/a/manifests/x", routeNone, "", ""},
		{"/v2/a", routeNone, "", ""},
		{"/v2x/a/manifests/b", routeNone, "", ""},
	} {
		rt := parseRoute(tc.path)
		if rt.kind != tc.kind || rt.name != tc.name || rt.arg != tc.arg {
			t.Errorf("parseRoute(%q) = %+v", tc.path, rt)
		}
	}
}
