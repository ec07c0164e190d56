package ui

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

func TestParsePath(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		path string
		want uiRoute
	}{
		{"/ui/", uiRoute{page: pageRepos}},
		{"/ui/storage", uiRoute{page: pageStorage}},
		{"/ui/r/a/b/c/", uiRoute{page: pageRepo, repo: "a/b/c"}},
		{"/ui/r/a/b/-/manifest/" + d, uiRoute{page: pageManifest, repo: "a/b", digest: digest.Digest(d)}},
		{"/ui/r/a/-/tag/v1.0", uiRoute{page: pageTag, repo: "a", tag: "v1.0"}},
		{"/ui/r/a/-/delete", uiRoute{page: pageDelete, repo: "a"}},
		{"/ui/static/style.css", uiRoute{page: pageStatic, file: "style.css"}},
		{"/ui/r/a/-/", uiRoute{}},
		{"/ui/r/a%2fb/", uiRoute{}},
		{"/ui/r/../x/", uiRoute{}},
		{"/ui/r/a/-/tag/%2e%2e", uiRoute{}},
		{"/ui/r/a/-/manifest/sha256:zz", uiRoute{}},
		{"/ui/r/a/-/delete/x", uiRoute{}},
		{"/ui/static/../x", uiRoute{}},
		{"/v2/a/manifests/x", uiRoute{}},
	}
	for _, tt := range tests {
		if got := parsePath(tt.path); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.path, got, tt.want)
		}
	}
}

func digestHex(c byte) string { return strings.Repeat(string(c), 64) }

// FuzzParsePath: whatever the path, a parsed route names only valid
// repositories, tags and digests, and its links parse back to it.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/r/a/b/", "/ui/r/a/-/manifest/sha256:" + digestHex('0'), "/ui/r/a/-/tag/v1",
		"/ui/r/a/-/referrers/sha256:" + digestHex('1'), "/ui/r/a/-/delete", "/ui/static/ui.js", "/ui/r/a/-/-/", "/ui/r//-/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt := parsePath(path)
		if rt.repo != "" && !content.ValidName(rt.repo) {
			t.Fatalf("%q: invalid repository %q", path, rt.repo)
		}
		if rt.tag != "" && !content.ValidTag(rt.tag) {
			t.Fatalf("%q: invalid tag %q", path, rt.tag)
		}
		switch rt.page {
		case pageRepo:
			if parsePath(repoURL(rt.repo)) != rt {
				t.Fatalf("%q: repository link does not round-trip", path)
			}
		case pageManifest:
			if parsePath(manifestURL(rt.repo, rt.digest)) != rt {
				t.Fatalf("%q: manifest link does not round-trip", path)
			}
		case pageStatic:
			if strings.ContainsAny(rt.file, "/\\") || strings.HasPrefix(rt.file, ".") {
				t.Fatalf("%q: asset name %q escapes the folder", path, rt.file)
			}
		}
	})
}

func TestSummarizeScan(t *testing.T) {
	tests := []struct {
		name, report, format string
		counts               []severityCount
		err                  bool
	}{
		{"sarif scores and levels", sarifReport, "SARIF", []severityCount{{"critical", 1}, {"medium", 2}}, false},
		{"sarif without findings", `{"runs":[{"results":[]}]}`, "SARIF", nil, false},
		{"trivy json", `{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"Severity":"HIGH"},{"Severity":"LOW"},{"Severity":"HIGH"},{"Severity":"weird"}]},{"Misconfigurations":[{"Severity":"CRITICAL"}]}]}`,
			"Trivy", []severityCount{{"critical", 1}, {"high", 2}, {"low", 1}, {"unknown", 1}}, false},
		{"not json", `<xml/>`, "", nil, true},
		{"other json", `{"spdxVersion":"SPDX-2.3"}`, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := summarizeScan([]byte(tt.report))
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if s.Format != tt.format || len(s.Counts) != len(tt.counts) {
				t.Fatalf("got %+v", s)
			}
			for i := range s.Counts {
				if s.Counts[i] != tt.counts[i] {
					t.Errorf("count %d: %+v, want %+v", i, s.Counts[i], tt.counts[i])
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for at, kind := range map[string]string{
		"application/vnd.dev.cosign.artifact.sig.v1+json": kindSignature,
		"application/vnd.dev.sigstore.bundle.v0.3+json":   kindSignature,
		"application/vnd.cncf.notary.signature":           kindSignature,
		"application/spdx+json":                           kindSBOM,
		"text/spdx":                                       kindSBOM,
		"application/vnd.cyclonedx+json":                  kindSBOM,
		"application/vnd.cyclonedx+xml":                   kindSBOM,
		"application/sarif+json":                          kindScan,
		"application/vnd.aquasec.trivy.report.sarif.v1":   kindScan,
		"application/vnd.example":                         kindOther,
		"":                                                kindOther,
	} {
		if got := classify(at); got != kind {
			t.Errorf("%q: %s, want %s", at, got, kind)
		}
	}
}

// FuzzSummarizeScan: any report blob is summarised or refused, never a
// panic, and the counts add up.
func FuzzSummarizeScan(f *testing.F) {
	f.Add([]byte(sarifReport))
	f.Add([]byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"Severity":"HIGH"}]}]}`))
	f.Add([]byte(`{"runs":[{"tool":{"driver":{"rules":[{"id":"a","properties":{"security-severity":"x"}}]}},"results":[{"ruleId":"a"}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := summarizeScan(b)
		if err != nil {
			return
		}
		n := 0
		for _, c := range s.Counts {
			if c.Count <= 0 || rank(c.Severity) == len(severities) {
				t.Fatalf("bad count %+v", c)
			}
			n += c.Count
		}
		if n != s.Total {
			t.Fatalf("total %d, counts sum to %d", s.Total, n)
		}
	})
}
