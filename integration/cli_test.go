package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCLIClients drives the command-line clients people actually use
// (installed by integration/test.sh) through push, pull, copy, list and
// delete against a real `stratus serve`.
func TestCLIClients(t *testing.T) {
	for _, b := range storageBackends() {
		t.Run(b.name, func(t *testing.T) { cliClients(t, startServer(t, b.args(t))) })
	}
}

func cliClients(t *testing.T, srv *server) {
	host := srv.Addr
	img, err := random.Image(256*1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "seed/img:v1"), img); err != nil {
		t.Fatal(err)
	}
	seedDigest, _ := img.Digest()
	work := t.TempDir()

	t.Run("crane", func(t *testing.T) {
		run(t, nil, "crane", "copy", "--insecure", host+"/seed/img:v1", host+"/crane/img:v1")
		if d := strings.TrimSpace(run(t, nil, "crane", "digest", "--insecure", host+"/crane/img:v1")); d != seedDigest.String() {
			t.Fatalf("digest after copy %s, want %s", d, seedDigest)
		}
		tarball := filepath.Join(work, "crane.tar")
		run(t, nil, "crane", "pull", "--insecure", host+"/crane/img:v1", tarball)
		run(t, nil, "crane", "push", "--insecure", tarball, host+"/crane/pushed:v2")
		run(t, nil, "crane", "tag", "--insecure", host+"/crane/img:v1", "v1-alias")
		if tags := run(t, nil, "crane", "ls", "--insecure", host+"/crane/img"); !strings.Contains(tags, "v1-alias") || !strings.Contains(tags, "v1") {
			t.Fatalf("crane ls: %q", tags)
		}
		if cat := run(t, nil, "crane", "catalog", "--insecure", host); !strings.Contains(cat, "crane/img") || !strings.Contains(cat, "crane/pushed") {
			t.Fatalf("crane catalog: %q", cat)
		}
		m := run(t, nil, "crane", "manifest", "--insecure", host+"/crane/img:v1")
		if !strings.Contains(m, `"layers"`) {
			t.Fatalf("crane manifest: %q", m)
		}
		run(t, nil, "crane", "delete", "--insecure", host+"/crane/img@"+seedDigest.String())
		if tags := run(t, nil, "crane", "ls", "--insecure", host+"/crane/img"); strings.TrimSpace(tags) != "" {
			t.Fatalf("tags left after deleting the manifest: %q", tags)
		}
	})

	t.Run("oras", func(t *testing.T) {
		file := filepath.Join(work, "artifact.txt")
		if err := os.WriteFile(file, []byte("artifact payload\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sbom := filepath.Join(work, "sbom.json")
		if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		orasIn := func(args ...string) string {
			t.Helper()
			cmd := append(args, "--plain-http")
			return runIn(t, work, "oras", cmd...)
		}
		orasIn("push", host+"/oras/art:v1", "--artifact-type", "application/vnd.example", "artifact.txt:text/plain")
		orasIn("attach", host+"/oras/art:v1", "--artifact-type", "application/spdx+json", "sbom.json:application/spdx+json")
		if out := orasIn("discover", host+"/oras/art:v1", "--format", "json"); !strings.Contains(out, "application/spdx+json") {
			t.Fatalf("oras discover: %s", out)
		}
		out := filepath.Join(work, "oras-out")
		orasIn("pull", host+"/oras/art:v1", "-o", out)
		got, err := os.ReadFile(filepath.Join(out, "artifact.txt"))
		if err != nil || string(got) != "artifact payload\n" {
			t.Fatalf("oras pull: %q %v", got, err)
		}
		runIn(t, work, "oras", "cp", host+"/oras/art:v1", host+"/oras/copy:v1", "--to-plain-http", "--from-plain-http")
		if tags := orasIn("repo", "tags", host+"/oras/copy"); !strings.Contains(tags, "v1") {
			t.Fatalf("oras repo tags: %q", tags)
		}
		orasIn("manifest", "delete", "--force", host+"/oras/copy:v1")
		if tags := orasIn("repo", "tags", host+"/oras/copy"); strings.Contains(tags, "v1") {
			t.Fatalf("tag survived manifest delete: %q", tags)
		}
	})

	t.Run("regctl", func(t *testing.T) {
		home := t.TempDir()
		env := []string{"HOME=" + home}
		run(t, env, "regctl", "registry", "set", "--tls", "disabled", host)
		run(t, env, "regctl", "image", "copy", host+"/seed/img:v1", host+"/regctl/img:v1")
		if d := strings.TrimSpace(run(t, env, "regctl", "image", "digest", host+"/regctl/img:v1")); d != seedDigest.String() {
			t.Fatalf("regctl digest %s, want %s", d, seedDigest)
		}
		// regctl uploads blobs in chunked PATCHes; a blob bigger than its chunk
		// size exercises that path.
		big := filepath.Join(work, "big.bin")
		data := make([]byte, 5<<20+123)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if err := os.WriteFile(big, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(big)
		defer f.Close()
		d := strings.TrimSpace(runStdin(t, env, f, "regctl", "blob", "put", host+"/regctl/blobs"))
		if !strings.HasPrefix(d, "sha256:") {
			t.Fatalf("regctl blob put: %q", d)
		}
		back := run(t, env, "regctl", "blob", "get", host+"/regctl/blobs", d)
		if len(back) != len(data) {
			t.Fatalf("regctl blob get: %d bytes, want %d", len(back), len(data))
		}
		run(t, env, "regctl", "image", "export", host+"/regctl/img:v1", filepath.Join(work, "regctl.tar"))
		if tags := run(t, env, "regctl", "tag", "ls", host+"/regctl/img"); !strings.Contains(tags, "v1") {
			t.Fatalf("regctl tag ls: %q", tags)
		}
		if repos := run(t, env, "regctl", "repo", "ls", host); !strings.Contains(repos, "regctl/img") {
			t.Fatalf("regctl repo ls: %q", repos)
		}
		run(t, env, "regctl", "tag", "delete", host+"/regctl/img:v1")
		if tags := run(t, env, "regctl", "tag", "ls", host+"/regctl/img"); strings.Contains(tags, "v1") {
			t.Fatalf("tag survived regctl tag delete: %q", tags)
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		flags := []string{"--src-tls-verify=false", "--dest-tls-verify=false"}
		run(t, nil, "skopeo", append([]string{"copy"}, append(flags, "docker://"+host+"/seed/img:v1", "docker://"+host+"/skopeo/img:v1")...)...)
		if out := run(t, nil, "skopeo", "inspect", "--tls-verify=false", "docker://"+host+"/skopeo/img:v1"); !strings.Contains(out, seedDigest.String()) {
			t.Fatalf("skopeo inspect: %s", out)
		}
		layout := filepath.Join(work, "skopeo-oci")
		run(t, nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+host+"/skopeo/img:v1", "oci:"+layout+":v1")
		run(t, nil, "skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+host+"/skopeo/back:v1")
		if tags := run(t, nil, "skopeo", "list-tags", "--tls-verify=false", "docker://"+host+"/skopeo/back"); !strings.Contains(tags, `"v1"`) {
			t.Fatalf("skopeo list-tags: %s", tags)
		}
		run(t, nil, "skopeo", "delete", "--tls-verify=false", "docker://"+host+"/skopeo/back:v1")
		if tags := run(t, nil, "skopeo", "list-tags", "--tls-verify=false", "docker://"+host+"/skopeo/back"); strings.Contains(tags, `"v1"`) {
			t.Fatalf("skopeo delete left the tag: %s", tags)
		}
	})
}
