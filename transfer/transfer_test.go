package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

const maxManifest = 4 << 20

var testOpts = ImportOptions{MaxManifestSize: maxManifest, PinTimeout: 10 * time.Second}

type testStore struct {
	driver storage.Driver
	store  *content.Store
}

func newTestStore(t *testing.T) *testStore {
	t.Helper()
	d, err := filesystem.New(filesystem.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := content.New(d, memory.New(), content.Options{MaxManifestSize: maxManifest})
	if err != nil {
		t.Fatal(err)
	}
	return &testStore{driver: d, store: s}
}

func (ts *testStore) repo(t *testing.T, name string) *content.Repository {
	t.Helper()
	r, err := ts.store.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (ts *testStore) blob(t *testing.T, repo string, mediaType string, b []byte) v1.Descriptor {
	t.Helper()
	ctx := context.Background()
	d := digest.FromBytes(b)
	id := newUploadID()
	if _, err := ts.store.PutData(ctx, id, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if err := ts.repo(t, repo).CommitBlob(ctx, d, id, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (ts *testStore) manifest(t *testing.T, repo string, doc any, tags ...string) v1.Descriptor {
	t.Helper()
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := content.ParseNewManifest("", body)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(body)
	if err := ts.repo(t, repo).PutManifest(context.Background(), d, pm, body, tags, time.Second); err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: pm.MediaType, Digest: d, Size: int64(len(body))}
}

func (ts *testStore) image(t *testing.T, repo, seed string, shared v1.Descriptor, subject *v1.Descriptor, tags ...string) v1.Descriptor {
	t.Helper()
	cfg := ts.blob(t, repo, v1.MediaTypeImageConfig, []byte(`{"seed":"`+seed+`"}`))
	layer := ts.blob(t, repo, v1.MediaTypeImageLayerGzip, bytes.Repeat([]byte(seed), 5000))
	if shared.Digest != "" {
		ts.repo(t, repo).Link(context.Background(), shared.Digest)
	}
	layers := []v1.Descriptor{layer}
	if shared.Digest != "" {
		layers = append(layers, shared)
	}
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Config: cfg, Layers: layers, Subject: subject}
	if subject != nil {
		m.ArtifactType = "application/vnd.example.sbom"
	}
	return ts.manifest(t, repo, m, tags...)
}

// fixture is two repositories: app/web with tags v1, v2, multi (an index
// of two platforms) and a referrer of v1; app/api with v1. One layer is
// shared by every image.
type fixture struct {
	shared   v1.Descriptor
	referrer v1.Descriptor
	web1     v1.Descriptor
}

func buildFixture(t *testing.T, ts *testStore) fixture {
	t.Helper()
	var f fixture
	f.shared = ts.blob(t, "app/web", v1.MediaTypeImageLayerGzip, bytes.Repeat([]byte("shared layer "), 20000))
	f.web1 = ts.image(t, "app/web", "web-v1", f.shared, nil, "v1")
	ts.image(t, "app/web", "web-v2", f.shared, nil, "v2", "latest")
	amd := ts.image(t, "app/web", "amd64", f.shared, nil)
	arm := ts.image(t, "app/web", "arm64", f.shared, nil)
	amd.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"}
	ts.manifest(t, "app/web", v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{amd, arm}}, "multi")
	f.referrer = ts.image(t, "app/web", "sbom", v1.Descriptor{}, &f.web1)
	ts.image(t, "app/api", "api-v1", f.shared, nil, "v1")
	return f
}

// keys lists every object of the store with its size.
func keys(t *testing.T, d storage.Driver) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		page, err := d.List(context.Background(), "", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			out = append(out, fmt.Sprintf("%s %d", o.Key, o.Size))
		}
		if !page.More || len(page.Objects) == 0 {
			return out
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

// contentKeys are the keys an import must reproduce: everything except
// upload data and its index, whose names are per-upload random ids.
func contentKeys(t *testing.T, d storage.Driver) []string {
	var out []string
	for _, k := range keys(t, d) {
		if !strings.HasPrefix(k, "data/") && !strings.HasPrefix(k, "datarefs/") {
			out = append(out, k)
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"layout", "layout.tar"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src := newTestStore(t)
			f := buildFixture(t, src)
			out := filepath.Join(t.TempDir(), name)
			st, err := Export(ctx, src.store, out, Filter{}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			// 2 repositories; tags v1 v2 latest multi, and v1; manifests:
			// 6 images (web v1, v2, amd64, arm64, the referrer; api v1)
			// and the index; blobs: the shared layer once, plus a config
			// and a layer per image.
			want := ExportStats{Repositories: 2, Tags: 5, Manifests: 7, Blobs: 13}
			st.Bytes = 0
			if st != want {
				t.Fatalf("export stats %+v, want %+v", st, want)
			}
			dst := newTestStore(t)
			ist, err := Import(ctx, dst.store, out, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if ist.Present() != 0 || ist.TagsSet != 5 || ist.ManifestsImported != 7 {
				t.Fatalf("first import %+v", ist)
			}
			if got, want := contentKeys(t, dst.driver), contentKeys(t, src.driver); !slices.Equal(got, want) {
				t.Fatalf("imported store differs from the source:\n got %q\nwant %q", got, want)
			}
			assertBlob(t, dst, "app/api", f.shared)
			page, err := dst.repo(t, "app/web").Referrers(ctx, f.web1.Digest, content.ReferrersQuery{MaxEntries: 10, MaxBytes: 1 << 20})
			if err != nil || len(page.Records) != 1 || !strings.Contains(string(page.Records[0]), f.referrer.Digest.String()) {
				t.Fatalf("referrers of v1 after import: %q, %v", page.Records, err)
			}

			before := keys(t, dst.driver)
			again, err := Import(ctx, dst.store, out, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if again.Imported() != 0 || again.Present() != ist.Imported() {
				t.Fatalf("second import %+v, want nothing imported and %d present", again, ist.Imported())
			}
			if after := keys(t, dst.driver); !slices.Equal(before, after) {
				t.Fatalf("second import changed the store:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

func assertBlob(t *testing.T, ts *testStore, repo string, want v1.Descriptor) {
	t.Helper()
	ctx := context.Background()
	b, err := ts.repo(t, repo).StatBlob(ctx, want.Digest, true)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ts.store.Open(ctx, b, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := digest.FromReader(rc)
	if err != nil || got != want.Digest {
		t.Fatalf("blob %s reads back as %s (%v)", want.Digest, got, err)
	}
}

func TestExportFilters(t *testing.T) {
	src := newTestStore(t)
	buildFixture(t, src)
	cases := []struct {
		name     string
		filter   Filter
		wantTags []string // repository:tag in index.json
	}{
		{"all", Filter{}, []string{"app/api:v1", "app/web:latest", "app/web:multi", "app/web:v1", "app/web:v2"}},
		{"one repository", Filter{Repos: []string{"app/api"}}, []string{"app/api:v1"}},
		{"glob over repositories", Filter{Repos: []string{"app/**"}, Tags: []string{"v1"}}, []string{"app/api:v1", "app/web:v1"}},
		{"tag glob", Filter{Tags: []string{"v*"}}, []string{"app/api:v1", "app/web:v1", "app/web:v2"}},
		{"nothing matches", Filter{Repos: []string{"other/*"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "layout")
			if _, err := Export(context.Background(), src.store, out, tc.filter, time.Now()); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(out, indexFile))
			if err != nil {
				t.Fatal(err)
			}
			entries, err := parseIndex(b, maxManifest)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				if e.Tag != "" {
					got = append(got, e.Repository+":"+e.Tag)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantTags) {
				t.Fatalf("tags %q, want %q", got, tc.wantTags)
			}
			dst := newTestStore(t)
			if _, err := Import(context.Background(), dst.store, out, testOpts); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := Export(context.Background(), src.store, t.TempDir(), Filter{Tags: []string{"[v"}}, time.Now()); err == nil {
		t.Fatal("a malformed glob was accepted")
	}
}

func TestImportRejectsTamperedBlob(t *testing.T) {
	ctx := context.Background()
	src := newTestStore(t)
	f := buildFixture(t, src)
	out := filepath.Join(t.TempDir(), "layout")
	if _, err := Export(ctx, src.store, out, Filter{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, blobPath(f.shared.Digest))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := newTestStore(t)
	_, err = Import(ctx, dst.store, out, testOpts)
	var mm *DigestMismatchError
	if !errors.As(err, &mm) || mm.Want != f.shared.Digest || !strings.Contains(err.Error(), f.shared.Digest.String()) || !strings.Contains(err.Error(), file) {
		t.Fatalf("import of a tampered layer: %v; want a mismatch naming %s and %s", err, f.shared.Digest, file)
	}
	if _, err := dst.store.Stat(ctx, f.shared.Digest); !errors.Is(err, content.ErrBlobUnknown) {
		t.Fatalf("the tampered blob has a record: %v", err)
	}
	for _, k := range keys(t, dst.driver) {
		if strings.Contains(k, f.shared.Digest.Encoded()) {
			t.Fatalf("key %s of the tampered blob was stored", k)
		}
	}
	// Every data object left belongs to a committed blob: the tampered
	// upload's data was removed.
	var data, records int
	for _, k := range keys(t, dst.driver) {
		switch {
		case strings.HasPrefix(k, "data/"):
			data++
		case strings.HasPrefix(k, "blobs/"):
			records++
		}
	}
	if data != records {
		t.Fatalf("%d data objects for %d blob records: the tampered upload left data behind", data, records)
	}
}

func TestImportRejectsMalformedLayouts(t *testing.T) {
	good := func(t *testing.T) string {
		src := newTestStore(t)
		buildFixture(t, src)
		out := filepath.Join(t.TempDir(), "layout")
		if _, err := Export(context.Background(), src.store, out, Filter{Repos: []string{"app/api"}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"no marker", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, layoutFile)) }, "oci-layout is missing"},
		{"wrong version", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, layoutFile), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o644)
		}, "imageLayoutVersion"},
		{"bad index", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, indexFile), []byte(`{"schemaVersion":2,"manifests":[{}]}`), 0o644)
		}, "manifests[0]"},
		{"missing manifest", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, indexFile))
			entries, _ := parseIndex(b, maxManifest)
			os.Remove(filepath.Join(dir, blobPath(entries[0].Descriptor.Digest)))
		}, "is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := good(t)
			tc.damage(t, dir)
			dst := newTestStore(t)
			_, err := Import(context.Background(), dst.store, dir, testOpts)
			if !errors.Is(err, ErrLayoutInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import: %v; want ErrLayoutInvalid mentioning %q", err, tc.want)
			}
			if k := keys(t, dst.driver); len(k) != 0 {
				t.Fatalf("a refused layout stored %q", k)
			}
		})
	}
}

func TestReadVerifyingReader(t *testing.T) {
	body := []byte("hello")
	cases := []struct {
		name  string
		want  digest.Digest
		fails bool
	}{
		{"match", digest.FromBytes(body), false},
		{"mismatch", digest.FromString("other"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := io.ReadAll(newVerifyingReader(bytes.NewReader(body), tc.want, "f"))
			var mm *DigestMismatchError
			if got := errors.As(err, &mm); got != tc.fails {
				t.Fatalf("err %v, want failure %v", err, tc.fails)
			}
		})
	}
}
