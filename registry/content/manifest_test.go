package content

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

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
			pm, err := ParseManifest(tc.ct, []byte(tc.body))
			if tc.wantErr {
				if !errors.Is(err, ErrManifestInvalid) {
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
			if _, err := ParseManifest(mtOCIManifest, []byte(tc.body)); err != nil {
				t.Fatalf("stored manifest no longer parses: %v", err)
			}
			_, err := ParseNewManifest(mtOCIManifest, []byte(tc.body))
			if tc.pushOK != (err == nil) || (err != nil && !errors.Is(err, ErrManifestInvalid)) {
				t.Fatalf("push: err = %v, want ok=%v", err, tc.pushOK)
			}
		})
	}
}
