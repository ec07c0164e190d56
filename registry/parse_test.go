package registry

import (
	"encoding/json"
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

func TestParseManifest(t *testing.T) {
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}`
	layer := `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + strings.Repeat("2", 64) + `","size":3}`
	foreign := `{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"sha256:` + strings.Repeat("3", 64) + `","size":3}`
	child := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("4", 64) + `","size":3}`
	subject := `"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("5", 64) + `","size":9}`
	for _, tc := range []struct {
		name, ct, body string
		refs           int
		wantMT         string
		wantErr        bool
	}{
		{name: "oci image", ct: mtOCIManifest, body: `{"schemaVersion":2,"config":` + cfg + `,"layers":[` + layer + `]}`, refs: 2, wantMT: mtOCIManifest},
		{name: "foreign layer exempt", ct: mtOCIManifest, body: `{"schemaVersion":2,"config":` + cfg + `,"layers":[` + layer + `,` + foreign + `]}`, refs: 2, wantMT: mtOCIManifest},
		{name: "media type from body", ct: "", body: `{"schemaVersion":2,"mediaType":"` + mtDockerManifest + `","config":` + cfg + `,"layers":[]}`, refs: 1, wantMT: mtDockerManifest},
		{name: "inferred index", ct: "", body: `{"schemaVersion":2,"manifests":[` + child + `]}`, refs: 1, wantMT: mtOCIIndex},
		{name: "artifact with subject", ct: mtOCIManifest, body: `{"schemaVersion":2,"artifactType":"x/y","config":` + cfg + `,"layers":[],` + subject + `}`, refs: 1, wantMT: mtOCIManifest},
		{name: "content type params", ct: mtOCIIndex + "; charset=utf-8", body: `{"schemaVersion":2,"manifests":[]}`, refs: 0, wantMT: mtOCIIndex},
		{name: "malformed json", ct: mtOCIManifest, body: `{"schemaVersion":2,`, wantErr: true},
		{name: "trailing data", ct: mtOCIManifest, body: `{"schemaVersion":2,"config":` + cfg + `} {}`, wantErr: true},
		{name: "inconsistent media type", ct: mtOCIIndex, body: `{"schemaVersion":2,"mediaType":"` + mtOCIManifest + `","config":` + cfg + `}`, wantErr: true},
		{name: "index with layers", ct: mtOCIIndex, body: `{"schemaVersion":2,"manifests":[],"layers":[]}`, wantErr: true},
		{name: "manifest with manifests", ct: mtOCIManifest, body: `{"schemaVersion":2,"config":` + cfg + `,"manifests":[]}`, wantErr: true},
		{name: "no config", ct: mtOCIManifest, body: `{"schemaVersion":2,"layers":[]}`, wantErr: true},
		{name: "schema 1", ct: mtOCIManifest, body: `{"schemaVersion":1,"config":` + cfg + `}`, wantErr: true},
		{name: "bad layer digest", ct: mtOCIManifest, body: `{"schemaVersion":2,"config":` + cfg + `,"layers":[{"mediaType":"x","digest":"sha256:zz","size":1}]}`, wantErr: true},
		{name: "negative size", ct: mtOCIManifest, body: `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:` + strings.Repeat("1", 64) + `","size":-1}}`, wantErr: true},
		{name: "unknown type", ct: "application/vnd.example+json", body: `{"schemaVersion":2}`, wantErr: true},
		{name: "docker without mediaType", ct: mtDockerManifest, body: `{"schemaVersion":2,"config":` + cfg + `}`, wantErr: true},
		{name: "not an object", ct: mtOCIManifest, body: `[1,2]`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm, err := parseManifest(tc.ct, []byte(tc.body))
			if tc.wantErr {
				if !hasCode(err, codeManifestInvalid) {
					t.Fatalf("err = %v, want MANIFEST_INVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pm.MediaType != tc.wantMT || len(pm.Refs) != tc.refs {
				t.Fatalf("got %s with %d refs, want %s with %d", pm.MediaType, len(pm.Refs), tc.wantMT, tc.refs)
			}
		})
	}
}

func TestCheckJSONKeys(t *testing.T) {
	desc := `{"mediaType":"a/b","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}`
	deep := strings.Repeat(`{"x":`, maxJSONDepth) + `1` + strings.Repeat(`}`, maxJSONDepth)
	tooDeep := `{"x":` + deep + `}`
	for _, tc := range []struct {
		name, body string
		wantErr    string // substring of the error; "" means accepted
	}{
		{name: "plain manifest", body: `{"schemaVersion":2,"config":` + desc + `,"layers":[` + desc + `]}`},
		{name: "extension keys", body: `{"schemaVersion":2,"x-vendor":{"a":1,"A":2},"layers":[{"foo":"bar"}]}`},
		{name: "annotations differ in case", body: `{"annotations":{"a":"1","A":"2"},"config":{"annotations":{"k":"1","K":"2"}}}`},
		{name: "docker list", body: `{"schemaVersion":2,"manifests":[{"platform":{"architecture":"amd64","os":"linux","os.version":"10","os.features":["a"],"variant":"v8","features":["sse4"]}}]}`},
		{name: "nesting at the limit", body: deep},
		{name: "scalar", body: `2`},
		{name: "duplicate top-level key", body: `{"layers":[],"layers":[]}`, wantErr: `key "layers" appears twice in the manifest`},
		{name: "case shadow", body: `{"layers":[` + desc + `],"LAYERS":[]}`, wantErr: `key "LAYERS" in the manifest: keys are case-sensitive, the spec's field is "layers"`},
		{name: "wrong case alone", body: `{"SchemaVersion":2}`, wantErr: `the spec's field is "schemaVersion"`},
		{name: "long s folds to s", body: `{"ſchemaVersion":2}`, wantErr: `the spec's field is "schemaVersion"`},
		{name: "escaped duplicate", body: `{"layers":[],"\u006cayers":[]}`, wantErr: `appears twice`},
		{name: "unknown keys differing in case", body: `{"foo":1,"FOO":2}`, wantErr: `keys "foo" and "FOO" in the manifest differ only in case`},
		{name: "descriptor key case", body: `{"config":{"MediaType":"a/b"}}`, wantErr: `key "MediaType" in config`},
		{name: "layer duplicate digest", body: `{"layers":[` + desc + `,{"digest":"x","digest":"y"}]}`, wantErr: `key "digest" appears twice in layers[1]`},
		{name: "platform case", body: `{"manifests":[{"platform":{"os":"linux","OS":"windows"}}]}`, wantErr: `in manifests[0].platform`},
		{name: "subject case", body: `{"subject":{"Digest":"x"}}`, wantErr: `key "Digest" in subject`},
		{name: "duplicate annotation", body: `{"annotations":{"a":"1","a":"2"}}`, wantErr: `key "a" appears twice in annotations`},
		{name: "duplicate in extension value", body: `{"x":{"y":[{"z":1,"z":2}]}}`, wantErr: `key "z" appears twice in x.y[0]`},
		{name: "too deep", body: tooDeep, wantErr: "levels deep"},
		{name: "syntax error", body: `{"a":}`, wantErr: "invalid character"},
		{name: "truncated", body: `{"a":[1,`, wantErr: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkJSONKeys([]byte(tc.body))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestGoJSONDifferential pins down the encoding/json behaviour the key
// check exists for: if a future Go stops matching keys this way, the check
// is still correct, only stricter than needed.
func TestGoJSONDifferential(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"mediaType":"a","MEDIATYPE":"b"}`, "b"},
		{`{"mediaType":"a","mediaType":"b"}`, "b"},
		{`{"mediaType":"a","mediaTypſ":"b"}`, "a"}, // not the same fold: ignored
		{`{"ſchemaVersion":"ignored","mediaType":"a","MediaType":"b"}`, "b"},
	} {
		var doc manifestDoc
		json.Unmarshal([]byte(tc.body), &doc)
		if doc.MediaType != tc.want {
			t.Errorf("%s: Go reads mediaType %q, want %q", tc.body, doc.MediaType, tc.want)
		}
	}
	var v struct {
		S int `json:"schemaVersion"`
	}
	if err := json.Unmarshal([]byte(`{"ſchemaVersion":2}`), &v); err != nil || v.S != 2 {
		t.Errorf("long s: Go reads %d, %v; the fold in foldKey no longer matches encoding/json", v.S, err)
	}
}

// TestParseNewManifest: pushes get the key check, stored manifests are read
// as they always were (GC must keep understanding what it already holds).
func TestParseNewManifest(t *testing.T) {
	cfg := `{"mediaType":"a/b","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}`
	for _, tc := range []struct {
		name, body string
		pushOK     bool
	}{
		{name: "clean", body: `{"schemaVersion":2,"config":` + cfg + `,"layers":[]}`, pushOK: true},
		{name: "shadowed layers", body: `{"schemaVersion":2,"config":` + cfg + `,"layers":[` + cfg + `],"LAYERS":[]}`},
		{name: "duplicate config", body: `{"schemaVersion":2,"config":` + cfg + `,"config":` + cfg + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseManifest(mtOCIManifest, []byte(tc.body)); err != nil {
				t.Fatalf("stored manifest no longer parses: %v", err)
			}
			_, err := parseNewManifest(mtOCIManifest, []byte(tc.body))
			if tc.pushOK != (err == nil) || (err != nil && !hasCode(err, codeManifestInvalid)) {
				t.Fatalf("push: err = %v, want ok=%v", err, tc.pushOK)
			}
		})
	}
}
