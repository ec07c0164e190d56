package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestAirGappedTransfer exports two repositories from one store with
// `stratus export`, imports the archive into an empty store with `stratus
// import` (no server running on it), and pulls everything back with crane
// and skopeo from a `stratus serve` on the imported store.
func TestAirGappedTransfer(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	src := startServer(t, []string{"--root", rootA})
	refs := seedTransfer(t, src)
	archive := filepath.Join(t.TempDir(), "carry.tar")
	out := stratusCLI(t, true, "export", "--root", rootA, archive)
	if !strings.Contains(out, "exported 2 repositories") {
		t.Fatalf("export: %s", out)
	}

	filtered := filepath.Join(t.TempDir(), "filtered")
	stratusCLI(t, true, "export", "--root", rootA, "--repo", "air/w*", "--tag", "v*", filtered)
	if idx, err := os.ReadFile(filepath.Join(filtered, "index.json")); err != nil ||
		!strings.Contains(string(idx), `"org.opencontainers.image.ref.name":"v2"`) || strings.Contains(string(idx), "air/api") || strings.Contains(string(idx), `"multi"`) {
		t.Fatalf("export --repo air/w* --tag v*: index.json %s (%v)", idx, err)
	}

	first := stratusCLI(t, true, "import", "--root", rootB, archive)
	m := regexp.MustCompile(`imported (\d+), already present (\d+)`).FindStringSubmatch(first)
	if m == nil || m[1] == "0" || m[2] != "0" {
		t.Fatalf("first import: %s", first)
	}
	before := treeListing(t, rootB)
	second := stratusCLI(t, true, "import", "--root", rootB, archive)
	if !strings.Contains(second, "imported 0, already present "+m[1]) {
		t.Fatalf("second import: %s (first: %s)", second, first)
	}
	if after := treeListing(t, rootB); after != before {
		t.Fatalf("second import changed the store:\nbefore\n%s\nafter\n%s", before, after)
	}

	dst := startServer(t, []string{"--root", rootB})
	work := t.TempDir()
	for tag, want := range refs {
		if tag == "referrer" {
			continue
		}
		if got := strings.TrimSpace(run(t, nil, "crane", "digest", "--insecure", dst.Addr+"/"+tag)); got != want {
			t.Errorf("%s: digest %s after import, want %s", tag, got, want)
		}
		srcManifest := run(t, nil, "crane", "manifest", "--insecure", src.Addr+"/"+tag)
		if got := run(t, nil, "crane", "manifest", "--insecure", dst.Addr+"/"+tag); got != srcManifest {
			t.Errorf("%s: manifest differs after import", tag)
		}
	}
	// crane verifies every blob's digest as it writes the layout.
	run(t, nil, "crane", "pull", "--insecure", "--format", "oci", dst.Addr+"/air/web:multi", filepath.Join(work, "crane"))
	run(t, nil, "skopeo", "copy", "--src-tls-verify=false", "--preserve-digests", "docker://"+dst.Addr+"/air/web:v1", "oci:"+filepath.Join(work, "skopeo")+":v1")
	idx, err := os.ReadFile(filepath.Join(work, "skopeo", "index.json"))
	if err != nil || !strings.Contains(string(idx), refs["air/web:v1"]) {
		t.Fatalf("skopeo layout index %s (%v); want %s", idx, err, refs["air/web:v1"])
	}
	resp, err := http.Get(dst.URL() + "/v2/air/web/referrers/" + refs["air/web:v1"])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), refs["referrer"]) {
		t.Fatalf("referrers of v1 after import: %s; want %s", body, refs["referrer"])
	}
}

// TestImportRejectsTamperedArchive flips one byte of a layer in an
// exported layout directory: the import fails naming the digest.
func TestImportRejectsTamperedArchive(t *testing.T) {
	rootA, rootB := t.TempDir(), t.TempDir()
	src := startServer(t, []string{"--root", rootA})
	img, err := random.Image(64*1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, src, "air/tamper:v1"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	dir := filepath.Join(t.TempDir(), "layout")
	stratusCLI(t, true, "export", "--root", rootA, dir)
	file := filepath.Join(dir, "blobs", "sha256", ld.Hex)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 0xff
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := stratusCLI(t, false, "import", "--root", rootB, dir)
	if !strings.Contains(out, ld.String()) || !strings.Contains(out, file) {
		t.Fatalf("import of a tampered layout: %s; want %s and %s named", out, ld, file)
	}
	if strings.Contains(treeListing(t, rootB), ld.Hex) {
		t.Fatalf("the tampered blob left objects in the store:\n%s", treeListing(t, rootB))
	}
}

// seedTransfer pushes air/web (v1 and v2 sharing a layer, an index of two
// platforms, a referrer of v1) and air/api (v1, sharing the layer), and
// returns each tag's digest.
func seedTransfer(t *testing.T, srv *server) map[string]string {
	t.Helper()
	shared, err := random.Layer(128*1024, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	image := func() v1.Image {
		img, err := random.Image(32*1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, shared)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	refs := map[string]string{}
	push := func(tag string, img v1.Image) v1.Image {
		if err := remote.Write(ref(t, srv, tag), img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		refs[tag] = d.String()
		return img
	}
	v1img := push("air/web:v1", image())
	push("air/web:v2", image())
	push("air/api:v1", image())
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: image(), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: image(), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(ref(t, srv, "air/web:multi"), idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	refs["air/web:multi"] = d.String()
	subject, err := partial(v1img)
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	sbom = mutate.MediaType(sbom, types.OCIManifestSchema1)
	sbom = mutate.Subject(sbom, subject).(v1.Image)
	sd, _ := sbom.Digest()
	if err := remote.Write(ref(t, srv, "air/web@"+sd.String()), sbom); err != nil {
		t.Fatal(err)
	}
	refs["referrer"] = sd.String()
	return refs
}

func partial(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, err
}

// stratusCLI runs the stratus binary with args; ok says whether it must
// succeed or fail. It returns the combined output.
func stratusCLI(t *testing.T, ok bool, args ...string) string {
	t.Helper()
	out, err := exec.Command(stratusBin, args...).CombinedOutput()
	if (err == nil) != ok {
		t.Fatalf("stratus %s: err %v, want success %v:\n%s", strings.Join(args, " "), err, ok, out)
	}
	return string(out)
}

// treeListing lists every file under root with its size.
func treeListing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "%s %d\n", rel, info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
