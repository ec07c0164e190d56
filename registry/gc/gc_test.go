package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

const testGrace = 100 * time.Millisecond

// fixture is a store with, in repository "a", a tagged image and an
// untagged one, each with its own config and layer, and an orphaned data
// object; everything is older than the grace period.
type fixture struct {
	store            *content.Store
	locks            *memory.Store
	repo             *content.Repository
	tagged, untagged []digest.Digest // config, layer
	untaggedManifest digest.Digest
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	store, err := content.New(inmemory.New(), locks, content.Options{MaxManifestSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := store.Repository("a")
	f := &fixture{store: store, locks: locks, repo: repo}
	f.tagged = putImage(t, store, repo, "kept", []string{"v1"}).blobs
	dropped := putImage(t, store, repo, "dropped", nil)
	f.untagged, f.untaggedManifest = dropped.blobs, dropped.manifest
	if _, err := store.PutData(ctx, fmt.Sprintf("%x", "orphan"), strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testGrace + 50*time.Millisecond) // every pin and write is older than grace
	return f
}

// image is one image putImage stored: its config and layer, and its
// manifest with the body and parse that PutManifest takes again to tag it.
type image struct {
	blobs    []digest.Digest
	manifest digest.Digest
	parsed   *content.Parsed
	body     []byte
}

// putImage stores an image named name (a config and a layer of its own)
// in repo, tagged with tags.
func putImage(t *testing.T, store *content.Store, repo *content.Repository, name string, tags []string) image {
	t.Helper()
	ctx := context.Background()
	var img image
	for _, b := range []string{`{"` + name + `":1}`, name + " layer"} {
		d := digest.FromString(b)
		// Upload ids are hex, as the registry makes them: the sweep lists
		// data in hex shards.
		id := fmt.Sprintf("%x", name+fmt.Sprint(len(img.blobs)))
		if _, err := store.PutData(ctx, id, strings.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		if err := repo.CommitBlob(ctx, d, id, int64(len(b))); err != nil {
			t.Fatal(err)
		}
		img.blobs = append(img.blobs, d)
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		content.MediaTypeOCIManifest, img.blobs[0], len(`{"`+name+`":1}`), img.blobs[1], len(name+" layer"))
	pm, err := content.ParseNewManifest(content.MediaTypeOCIManifest, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	img.manifest, img.parsed, img.body = digest.FromString(body), pm, []byte(body)
	if err := repo.PutManifest(ctx, img.manifest, pm, img.body, tags, time.Second); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPass(t *testing.T) {
	for _, tc := range []struct {
		name     string
		untagged string
		dryRun   bool
		want     Report // the counters compared
		gone     bool   // the untagged image is deleted
	}{
		{name: "keep untagged", untagged: "keep", want: Report{Repositories: 1, ManifestsExamined: 2, BlobsExamined: 4, OrphansDeleted: 1}},
		{name: "delete untagged", untagged: "delete", gone: true,
			want: Report{Repositories: 1, ManifestsExamined: 2, ManifestsDeleted: 1, LinksDeleted: 2, BlobsExamined: 4, BlobsDeleted: 2, OrphansDeleted: 1}},
		{name: "dry run", untagged: "delete", dryRun: true,
			want: Report{Repositories: 1, ManifestsExamined: 2, ManifestsDeleted: 1, LinksDeleted: 2, BlobsExamined: 4, BlobsDeleted: 2, OrphansDeleted: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			c, err := New(f.store, f.locks, Config{Grace: testGrace, Untagged: tc.untagged, UntaggedAge: testGrace, KeepReferrers: true, Concurrency: 4, UploadTTL: time.Hour}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Run(ctx, tc.dryRun)
			if err != nil {
				t.Fatal(err)
			}
			got := Report{Repositories: r.Repositories, ManifestsExamined: r.ManifestsExamined, ManifestsDeleted: r.ManifestsDeleted,
				LinksDeleted: r.LinksDeleted, BlobsExamined: r.BlobsExamined, BlobsDeleted: r.BlobsDeleted, OrphansDeleted: r.OrphansDeleted}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("report %+v\nwant   %+v", got, tc.want)
			}
			if tc.dryRun != (len(r.Decisions) > 0) {
				t.Errorf("%d decisions in a dry run=%v", len(r.Decisions), tc.dryRun)
			}
			for _, d := range f.tagged {
				if _, err := f.repo.StatBlob(ctx, d, false); err != nil {
					t.Errorf("tagged image's blob %s: %v", d, err)
				}
			}
			_, err = f.repo.GetManifest(ctx, f.untaggedManifest)
			if gone := errors.Is(err, content.ErrManifestUnknown); gone != (tc.gone && !tc.dryRun) {
				t.Errorf("untagged manifest: %v, want gone=%v", err, tc.gone)
			}
			for _, d := range f.untagged {
				_, err := f.store.Stat(ctx, d)
				if gone := errors.Is(err, content.ErrBlobUnknown); gone != (tc.gone && !tc.dryRun) {
					t.Errorf("untagged image's blob %s: %v, want gone=%v", d, err, tc.gone)
				}
			}
			last, err := c.LastReport(ctx)
			if err != nil || last.Started != r.Started {
				t.Errorf("last report: %v", err)
			}
		})
	}
}

func TestOnePassAtATime(t *testing.T) {
	f := newFixture(t)
	c, err := New(f.store, f.locks, Config{Grace: testGrace, Untagged: "keep", Concurrency: 1, UploadTTL: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := f.locks.Acquire(context.Background(), LeaseKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.locks.Release(context.Background(), lease)
	if _, err := c.Run(context.Background(), false); !errors.Is(err, ErrRunning) {
		t.Fatalf("second pass: %v, want ErrRunning", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	f := newFixture(t)
	for _, cfg := range []Config{
		{Untagged: "keep", Concurrency: 0},
		{Untagged: "sometimes", Concurrency: 1},
		{Untagged: "keep", Concurrency: 1, Grace: time.Hour, PinTTL: time.Hour + ClaimTTL},
	} {
		if _, err := New(f.store, f.locks, cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// A pass that outlives the pin lifetime (less grace and ClaimTTL) stops
// claiming: pins made at its cutoff may be forgotten by then. The pass
// fails and nothing is deleted; the same pass within the lifetime deletes.
func TestPassStopsClaimingPastPinLifetime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pinTTL time.Duration
		gone   bool
	}{
		{name: "within the lifetime", pinTTL: 24 * time.Hour, gone: true},
		{name: "unbounded", pinTTL: 0, gone: true},
		// A window of 1ns: over before the first claim.
		{name: "outlived", pinTTL: testGrace + ClaimTTL + time.Nanosecond, gone: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			c, err := New(f.store, f.locks, Config{Grace: testGrace, Untagged: "delete", UntaggedAge: testGrace,
				Concurrency: 4, UploadTTL: time.Hour, PinTTL: tc.pinTTL}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Run(ctx, false)
			if tc.gone != (err == nil) || (!tc.gone && !errors.Is(err, ErrPassTooLong)) {
				t.Fatalf("Run: %v", err)
			}
			if !tc.gone && r.ManifestsDeleted+r.LinksDeleted+r.BlobsDeleted+r.OrphansDeleted != 0 {
				t.Errorf("a pass past the pin lifetime deleted: %+v", r)
			}
			_, err = f.repo.GetManifest(ctx, f.untaggedManifest)
			if gone := errors.Is(err, content.ErrManifestUnknown); gone != tc.gone {
				t.Errorf("untagged manifest: %v, want gone=%v", err, tc.gone)
			}
			for _, d := range f.untagged {
				_, err := f.store.Stat(ctx, d)
				if gone := errors.Is(err, content.ErrBlobUnknown); gone != tc.gone {
					t.Errorf("untagged blob %s: %v, want gone=%v", d, err, tc.gone)
				}
			}
		})
	}
}
