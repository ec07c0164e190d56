package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	orasremote "oras.land/oras-go/v2/registry/remote"
	orasauth "oras.land/oras-go/v2/registry/remote/auth"
)

// The registry the browser test looks at: alice writes and deletes in the
// organisation acme, bob only reads it, and public/hello is pulled by
// anyone.
const uiPolicyYAML = `  access:
    groups:
      acme-writers: [alice]
      acme-readers: [bob]
    rules:
      - repository: "public/**"
        anonymous: true
        users: ["*"]
        actions: [pull]
      - repository: "public/**"
        users: [alice]
        actions: ["*"]
      - repository: "acme/**"
        groups: [acme-writers]
        actions: [pull, push, delete]
      - repository: "acme/**"
        groups: [acme-readers]
        actions: [pull]
      - catalog: true
        users: ["*"]
        actions: ["*"]
`

// Hostile values in the image's config and manifest: escaped, they show as
// text; unescaped, the script sets window.__pwned and the image is an
// external request the browser guard records.
const (
	hostileLabel      = `<script>window.__pwned=1</script>`
	hostileAnnotation = `<img src="http://evil.example/pwn.png">`
)

// uiSetup is a plain-HTTP `stratus serve` with htpasswd and uiPolicyYAML,
// on a filesystem root that `stratus gc run` can also open.
type uiSetup struct {
	srv    *server
	config string
	root   string
}

func startUIServer(t *testing.T) *uiSetup {
	t.Helper()
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	for _, user := range []string{"alice", "bob"} {
		runStdin(t, nil, strings.NewReader(authUsers[user]+"\n"), stratusBin, "htpasswd", "add", "--cost", "6", "--file", htpasswd, user)
	}
	s := &uiSetup{config: filepath.Join(dir, "stratus.yaml"), root: filepath.Join(dir, "root")}
	cfg := "auth:\n  htpasswd:\n    path: " + htpasswd + "\n    realm: Stratus UI test\n" + uiPolicyYAML
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv = startServer(t, []string{"--config", s.config, "--root", s.root})
	return s
}

// gcPass runs one `stratus gc run` on the server's storage, so that the
// storage and status pages have a report to show.
func (s *uiSetup) gcPass(t *testing.T) {
	t.Helper()
	out := run(t, nil, stratusBin, "gc", "run", "--json", "--config", s.config, "--root", s.root)
	var rep struct {
		Errors  []string        `json:"errors"`
		Storage json.RawMessage `json:"storage"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gc report: %v\n%s", err, out)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("gc pass errors: %v", rep.Errors)
	}
}

// uiContent is what seedUIContent pushed.
type uiContent struct {
	app       v1.Image // acme/app:v1, labelled, with referrers
	appLayers int
}

func aliceAuth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "alice", Password: authUsers["alice"]})
}

// seedUIContent pushes, as alice: public/hello:latest; acme/app:v0 and
// acme/app:v1 (labelled, annotated, hostile values included) with a
// cosign-style signature, an SPDX SBOM and a SARIF report as referrers of
// v1; and the two-platform index acme/multi:latest.
func seedUIContent(t *testing.T, srv *server) uiContent {
	t.Helper()
	push := func(repoTag string, img v1.Image) {
		t.Helper()
		if err := remote.Write(ref(t, srv, repoTag), img, aliceAuth()); err != nil {
			t.Fatalf("push %s: %v", repoTag, err)
		}
	}
	push("public/hello:latest", randomImage(t, 16<<10, 1))
	push("acme/app:v0", randomImage(t, 24<<10, 2))

	app := labelledImage(t)
	push("acme/app:v1", app)
	attachReferrers(t, srv, "acme/app", app)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        randomImage(t, 20<<10, 2),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	if err := remote.WriteIndex(ref(t, srv, "acme/multi:latest"), idx, aliceAuth()); err != nil {
		t.Fatalf("push acme/multi:latest: %v", err)
	}
	layers, err := app.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return uiContent{app: app, appLayers: len(layers)}
}

func randomImage(t *testing.T, layerSize, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// labelledImage is a three-layer linux/amd64 image whose config has an
// entrypoint, a command, env, labels and a creation time, and whose
// manifest has annotations.
func labelledImage(t *testing.T) v1.Image {
	t.Helper()
	base := randomImage(t, 48<<10, 3)
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cf.Config.Entrypoint = []string{"/usr/bin/acme-app"}
	cf.Config.Cmd = []string{"--serve"}
	cf.Config.Env = []string{"PATH=/usr/bin", "ACME_MODE=production"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title": "acme app",
		"org.example.hostile":            hostileLabel,
	}
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	annotated, ok := mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.description": "the acme application",
		"org.example.hostile":                  hostileAnnotation,
	}).(v1.Image)
	if !ok {
		t.Fatal("mutate.Annotations of an image is not an image")
	}
	return annotated
}

// sarifReport has two errors, one warning and one note.
const sarifReport = `{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{
"tool":{"driver":{"name":"acme-scanner","rules":[{"id":"R1"},{"id":"R2"},{"id":"R3"}]}},
"results":[
 {"ruleId":"R1","level":"error","message":{"text":"first error"}},
 {"ruleId":"R1","level":"error","message":{"text":"second error"}},
 {"ruleId":"R2","level":"warning","message":{"text":"a warning"}},
 {"ruleId":"R3","level":"note","message":{"text":"a note"}}]}]}`

const spdxSBOM = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"acme-app",
"documentNamespace":"https://example.com/spdx/acme-app","creationInfo":{"created":"2026-11-30T12:00:00Z","creators":["Tool: test"]},
"packages":[{"name":"libacme","SPDXID":"SPDXRef-libacme","versionInfo":"1.2.3","downloadLocation":"NOASSERTION"}]}`

// attachReferrers pushes three artifacts whose subject is img, with
// oras-go the way cosign (OCI 1.1 mode), syft and trivy attach theirs.
func attachReferrers(t *testing.T, srv *server, repoName string, img v1.Image) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	repo, err := orasremote.NewRepository(srv.Addr + "/" + repoName)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.Client = &orasauth.Client{
		Credential: orasauth.StaticCredential(srv.Addr, orasauth.Credential{Username: "alice", Password: authUsers["alice"]}),
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	subject := ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(d.String()), Size: int64(len(raw))}

	payload := `{"critical":{"identity":{"docker-reference":"` + srv.Addr + "/" + repoName + `"},"image":{"docker-manifest-digest":"` + d.String() + `"},"type":"cosign container image signature"},"optional":null}`
	for _, a := range []struct {
		artifactType, layerType, content string
		layerAnnotations                 map[string]string
	}{
		{"application/vnd.dev.cosign.artifact.sig.v1+json", "application/vnd.dev.cosign.simplesigning.v1+json", payload,
			map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString([]byte("not a real signature"))}},
		{"application/spdx+json", "application/spdx+json", spdxSBOM, nil},
		{"application/sarif+json", "application/sarif+json", sarifReport, nil},
	} {
		layer, err := oras.PushBytes(ctx, repo, a.layerType, []byte(a.content))
		if err != nil {
			t.Fatalf("push %s layer: %v", a.artifactType, err)
		}
		layer.Annotations = a.layerAnnotations
		_, err = oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, a.artifactType, oras.PackManifestOptions{
			Subject:             &subject,
			Layers:              []ocispec.Descriptor{layer},
			ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-11-30T12:00:00Z"},
		})
		if err != nil {
			t.Fatalf("push %s referrer: %v", a.artifactType, err)
		}
	}
}
