package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	orasremote "oras.land/oras-go/v2/registry/remote"
)

// These tests drive a real `stratus serve` with the client libraries that
// crane, ko, oras, notation and many CI systems are built on.

func newServer(t *testing.T) *server {
	t.Helper()
	return startServer(t, []string{"--root", t.TempDir()})
}

func ref(t *testing.T, srv *server, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(srv.Addr+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushRandomImage pushes a random image of layers layers of layerSize
// bytes to r with go-containerregistry.
func pushRandomImage(t *testing.T, r name.Reference, layerSize, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, layers)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", r, err)
	}
	return img
}

// pushPullImage is pushRandomImage, then a pull of r with every layer
// compared byte for byte; it returns what was pushed and pulled.
func pushPullImage(t *testing.T, r name.Reference, layerSize, layers int64) (pushed, pulled v1.Image) {
	t.Helper()
	pushed = pushRandomImage(t, r, layerSize, layers)
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", r, err)
	}
	layersEqual(t, pushed, pulled)
	return pushed, pulled
}

// layersEqual compares every layer of two images byte for byte, by digest of
// the compressed stream actually served.
func layersEqual(t *testing.T, want, got v1.Image) {
	t.Helper()
	if err := sameLayers(want, got); err != nil {
		t.Fatal(err)
	}
}

// sameLayers is layersEqual for goroutines, which must not call t.Fatal.
func sameLayers(want, got v1.Image) error {
	wl, err := want.Layers()
	if err != nil {
		return err
	}
	gl, err := got.Layers()
	if err != nil {
		return err
	}
	if len(wl) != len(gl) {
		return fmt.Errorf("layers: pushed %d, pulled %d", len(wl), len(gl))
	}
	for i := range wl {
		wd, _ := wl[i].Digest()
		rc, err := gl[i].Compressed()
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if gotHex := hex.EncodeToString(h.Sum(nil)); gotHex != wd.Hex {
			return fmt.Errorf("layer %d: pulled bytes hash to %s, pushed %s", i, gotHex, wd.Hex)
		}
	}
	return nil
}

func TestGGCRImagesAndIndexes(t *testing.T) {
	srv := newServer(t)
	img, err := random.Image(512*1024, 4)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, srv, "team/app:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push image: %v", err)
	}
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull image: %v", err)
	}
	wantDigest, _ := img.Digest()
	gotDigest, _ := pulled.Digest()
	if wantDigest != gotDigest {
		t.Fatalf("manifest digest: pushed %s, pulled %s", wantDigest, gotDigest)
	}
	wantRaw, _ := img.RawManifest()
	gotRaw, _ := pulled.RawManifest()
	if !bytes.Equal(wantRaw, gotRaw) {
		t.Error("manifest bytes differ after a round trip")
	}
	layersEqual(t, img, pulled)

	// A Docker schema2 image.
	dockerImg := mutate.MediaType(img, types.DockerManifestSchema2)
	dockerImg = mutate.ConfigMediaType(dockerImg, types.DockerConfigJSON)
	if err := remote.Write(ref(t, srv, "team/app:docker"), dockerImg); err != nil {
		t.Fatalf("push docker image: %v", err)
	}
	desc, err := remote.Get(ref(t, srv, "team/app:docker"))
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.DockerManifestSchema2 {
		t.Errorf("docker image served as %s", desc.MediaType)
	}

	// An index of several images (multi-arch).
	idx, err := random.Index(256*1024, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	ir := ref(t, srv, "team/multi:latest")
	if err := remote.WriteIndex(ir, idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	pulledIdx, err := remote.Index(ir)
	if err != nil {
		t.Fatal(err)
	}
	wantIdx, _ := idx.Digest()
	gotIdx, _ := pulledIdx.Digest()
	if wantIdx != gotIdx {
		t.Fatalf("index digest: pushed %s, pulled %s", wantIdx, gotIdx)
	}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		child, err := pulledIdx.Image(m.Digest)
		if err != nil {
			t.Fatalf("child %s: %v", m.Digest, err)
		}
		orig, _ := idx.Image(m.Digest)
		layersEqual(t, orig, child)
	}

	tags, err := remote.List(ref(t, srv, "team/app").Context())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, ",") != "docker,v1" {
		t.Errorf("tags = %v", tags)
	}
	repos, err := remote.Catalog(context.Background(), r.Context().Registry)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(repos, ",") != "team/app,team/multi" {
		t.Errorf("catalog = %v", repos)
	}
}

func TestGGCRMountAcrossRepositories(t *testing.T) {
	srv := newServer(t)
	src := ref(t, srv, "src/app:v1")
	img := pushRandomImage(t, src, 1<<20, 2)
	// crane copy within one registry mounts layers instead of re-uploading them.
	if err := crane.Copy(src.String(), srv.Addr+"/dst/app:v1", crane.Insecure); err != nil {
		t.Fatalf("copy: %v", err)
	}
	pulled, err := remote.Image(ref(t, srv, "dst/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	layersEqual(t, img, pulled)

	// And the mount request itself: 201 with the digest, then servable.
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	url := fmt.Sprintf("%s/v2/third/app/blobs/uploads/?mount=%s&from=src/app", srv.URL(), d)
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("mount: %s, digest header %q", resp.Status, resp.Header.Get("Docker-Content-Digest"))
	}
	head, err := http.Head(fmt.Sprintf("%s/v2/third/app/blobs/%s", srv.URL(), d))
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK {
		t.Fatalf("mounted blob HEAD: %s", head.Status)
	}
	// A repository that neither uploaded nor mounted the blob must not serve it.
	other, err := http.Head(fmt.Sprintf("%s/v2/unrelated/app/blobs/%s", srv.URL(), d))
	if err != nil {
		t.Fatal(err)
	}
	other.Body.Close()
	if other.StatusCode != http.StatusNotFound {
		t.Fatalf("blob leaked into an unrelated repository: %s", other.Status)
	}
}

// TestChunkedUploadManySmallPatches streams one blob in hundreds of PATCHes
// of uneven sizes, the way regctl and containerd push, then pulls it back.
func TestChunkedUploadManySmallPatches(t *testing.T) {
	srv := newServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	blob := make([]byte, 3<<20+17)
	for i := range blob {
		blob[i] = byte(rng.UintN(256))
	}
	sum := sha256.Sum256(blob)
	dgst := "sha256:" + hex.EncodeToString(sum[:])

	resp, err := http.Post(srv.URL()+"/v2/chunked/blob/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	patches := 0
	for off := 0; off < len(blob); {
		n := 1 + rng.IntN(24<<10)
		if off+n > len(blob) {
			n = len(blob) - off
		}
		req, _ := http.NewRequest(http.MethodPatch, absolute(srv, loc), bytes.NewReader(blob[off:off+n]))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d at %d: %s", patches, off, resp.Status)
		}
		if want := fmt.Sprintf("0-%d", off+n-1); resp.Header.Get("Range") != want {
			t.Fatalf("PATCH %d: Range %q, want %q", patches, resp.Header.Get("Range"), want)
		}
		loc = resp.Header.Get("Location")
		off += n
		patches++
	}
	req, _ := http.NewRequest(http.MethodPut, absolute(srv, loc)+sep(loc)+"digest="+dgst, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("final PUT: %s", resp.Status)
	}
	get, err := http.Get(srv.URL() + "/v2/chunked/blob/blobs/" + dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer get.Body.Close()
	got, _ := io.ReadAll(get.Body)
	if !bytes.Equal(got, blob) {
		t.Fatalf("pulled %d bytes that differ from the %d pushed", len(got), len(blob))
	}
	t.Logf("%d PATCHes, %d bytes, verified", patches, len(blob))
}

func absolute(srv *server, loc string) string {
	if strings.HasPrefix(loc, "http") {
		return loc
	}
	return srv.URL() + loc
}

func sep(loc string) string {
	if strings.Contains(loc, "?") {
		return "&"
	}
	return "?"
}

// TestORASArtifactsAndReferrers pushes an image, attaches an SBOM and a
// signature as referrers with oras-go, and discovers them with the filter.
func TestORASArtifactsAndReferrers(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	repo, err := orasremote.NewRepository(srv.Addr + "/oras/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true

	layer := []byte("hello from an artifact layer")
	layerDesc := content.NewDescriptorFromBytes("application/vnd.example.layer", layer)
	if err := repo.Push(ctx, layerDesc, bytes.NewReader(layer)); err != nil {
		t.Fatalf("push layer: %v", err)
	}
	subject, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.thing",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layerDesc}})
	if err != nil {
		t.Fatalf("pack subject: %v", err)
	}
	if err := repo.Tag(ctx, subject, "v1"); err != nil {
		t.Fatal(err)
	}
	var referrers []ocispec.Descriptor
	for _, at := range []string{"application/spdx+json", "application/vnd.example.signature", "application/spdx+json"} {
		body := []byte(fmt.Sprintf(`{"type":%q,"n":%d}`, at, len(referrers)))
		bd := content.NewDescriptorFromBytes(at, body)
		if err := repo.Push(ctx, bd, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		d, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, at,
			oras.PackManifestOptions{Subject: &subject, Layers: []ocispec.Descriptor{bd}})
		if err != nil {
			t.Fatalf("attach %s: %v", at, err)
		}
		referrers = append(referrers, d)
	}

	var all, sboms []ocispec.Descriptor
	if err := repo.Referrers(ctx, subject, "", func(r []ocispec.Descriptor) error { all = append(all, r...); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := repo.Referrers(ctx, subject, "application/spdx+json", func(r []ocispec.Descriptor) error { sboms = append(sboms, r...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || len(sboms) != 2 {
		t.Fatalf("referrers: all=%d sboms=%d, want 3 and 2", len(all), len(sboms))
	}
	for _, d := range all {
		if d.ArtifactType == "" || d.Size == 0 {
			t.Errorf("referrer descriptor incomplete: %+v", d)
		}
	}

	// Pull the whole graph back into memory and compare bytes.
	dst := memory.New()
	got, err := oras.Copy(ctx, repo, "v1", dst, "v1", oras.DefaultCopyOptions)
	if err != nil {
		t.Fatalf("copy back: %v", err)
	}
	if got.Digest != subject.Digest {
		t.Fatalf("pulled %s, pushed %s", got.Digest, subject.Digest)
	}
	rc, err := repo.Fetch(ctx, layerDesc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, layer) {
		t.Error("layer bytes differ")
	}

	// The referrers response is an OCI index, and an unknown subject gives
	// an empty index, never 404.
	resp, err := http.Get(srv.URL() + "/v2/oras/app/referrers/sha256:" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx ocispec.Index
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil || resp.StatusCode != http.StatusOK || len(idx.Manifests) != 0 {
		t.Fatalf("empty referrers: %s %v %+v", resp.Status, err, idx)
	}
}
