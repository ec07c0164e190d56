package content

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func newTestStore(t *testing.T, d storage.Driver) (*Store, *memory.Store) {
	t.Helper()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	s, err := New(d, locks, Options{MaxManifestSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s, locks
}

func mustRepo(t *testing.T, s *Store, name string) *Repository {
	t.Helper()
	r, err := s.Repository(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// putBlob writes data for upload id and commits it as a blob of repo.
func putBlob(t *testing.T, s *Store, repo *Repository, id string, b []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	d := digest.FromBytes(b)
	if _, err := s.PutData(ctx, id, strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if err := repo.CommitBlob(ctx, d, id, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCommitBlobIsIdempotent(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// second is the upload id of a second commit of the same digest.
		second string
		// fault is injected on the second commit's record write.
		fault     drivertest.Fault
		wantErr   error
		wantData  []string // data keys left
		wantOwner string   // upload whose data serves the blob
	}{
		{name: "same upload again", second: "u1", wantData: []string{"data/u1"}, wantOwner: "u1"},
		{name: "lost answer of own record", second: "u1", fault: drivertest.After, wantData: []string{"data/u1"}, wantOwner: "u1"},
		{name: "another upload lost the race", second: "u2", wantData: []string{"data/u1"}, wantOwner: "u1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := drivertest.NewFaulty(inmemory.New())
			s, _ := newTestStore(t, f)
			repo := mustRepo(t, s, "a/b")
			d := putBlob(t, s, repo, "u1", []byte("layer"))
			if tc.second != "u1" {
				if _, err := s.PutData(ctx, tc.second, strings.NewReader("layer"), 5); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fault != 0 {
				f.Fail("put", "blobs/", tc.fault, 1)
			}
			if err := repo.CommitBlob(ctx, d, tc.second, 5); !errors.Is(err, tc.wantErr) {
				t.Fatalf("second commit: %v, want %v", err, tc.wantErr)
			}
			b, err := repo.StatBlob(ctx, d, true)
			if err != nil {
				t.Fatal(err)
			}
			if b.Data.UploadID() != tc.wantOwner || b.Size != 5 {
				t.Errorf("blob = %+v, want data of %s", b, tc.wantOwner)
			}
			var left []string
			page, err := f.List(ctx, dataPrefix, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Objects {
				left = append(left, o.Key)
			}
			if !slices.Equal(left, tc.wantData) {
				t.Errorf("data objects %v, want %v", left, tc.wantData)
			}
		})
	}
}

func TestCommitBlobRecordNotWritten(t *testing.T) {
	ctx := context.Background()
	f := drivertest.NewFaulty(inmemory.New())
	s, _ := newTestStore(t, f)
	repo := mustRepo(t, s, "a")
	if _, err := s.PutData(ctx, "u1", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	f.Fail("put", "blobs/", drivertest.Before, 1)
	err := repo.CommitBlob(ctx, digest.FromString("x"), "u1", 1)
	var nw *RecordNotWrittenError
	if !errors.As(err, &nw) {
		t.Fatalf("err = %v, want RecordNotWrittenError", err)
	}
	if _, err := s.StatData(ctx, "u1"); err != nil {
		t.Errorf("the upload's data was removed: %v", err)
	}
}

// TestClaimScopes: each deletion claims exactly what it removes, so a
// claim on one repository's link hides the blob there only.
func TestClaimScopes(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, inmemory.New())
	a, b := mustRepo(t, s, "a"), mustRepo(t, s, "b")
	d := putBlob(t, s, a, "u1", []byte("shared"))
	if ok, err := b.Mount(ctx, a, d); err != nil || !ok {
		t.Fatalf("mount: %v %v", ok, err)
	}
	later := time.Now().Add(time.Hour) // every pin so far is older
	for _, tc := range []struct {
		name      string
		target    Target
		wantClaim string
		// after the claim: does StatBlob of d work in a and b, and may a
		// commit of d (which pins the digest) go on?
		aServes, bServes, commitOK bool
	}{
		{name: "link of b", target: b.LinkTarget(d), wantClaim: LinkKey("b", d), aServes: true, bServes: false, commitOK: true},
		{name: "link of a", target: a.LinkTarget(d), wantClaim: LinkKey("a", d), aServes: false, bServes: true, commitOK: true},
		{name: "the blob", target: s.BlobTarget(d), wantClaim: d.String(), aServes: false, bServes: false, commitOK: false},
		{name: "data", target: s.DataTarget(DataRef(DataKey("u1"))), wantClaim: "data/u1", aServes: true, bServes: true, commitOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.target.ClaimKey(); got != tc.wantClaim {
				t.Fatalf("claim key %q, want %q", got, tc.wantClaim)
			}
			ok, err := s.Claim(ctx, tc.target, later, time.Minute)
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			defer s.Unclaim(ctx, tc.target)
			for _, side := range []struct {
				repo  *Repository
				serve bool
			}{{a, tc.aServes}, {b, tc.bServes}} {
				_, err := side.repo.StatBlob(ctx, d, true)
				if side.serve != (err == nil) || err != nil && !errors.Is(err, ErrBlobUnknown) {
					t.Errorf("StatBlob in %s: %v, want served=%v", side.repo.Name(), err, side.serve)
				}
			}
			if err := s.PinDigest(ctx, d); tc.commitOK != (err == nil) || err != nil && !errors.Is(err, ErrBeingDeleted) {
				t.Errorf("PinDigest: %v, want ok=%v", err, tc.commitOK)
			}
		})
	}
}

func TestManifestTargetIncludesReferrer(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, inmemory.New())
	repo := mustRepo(t, s, "r")
	cfg := putBlob(t, s, repo, "u1", []byte("{}"))
	subject := digest.FromString("subject")
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"a/b","digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":1}}`,
		MediaTypeOCIManifest, cfg, MediaTypeOCIManifest, subject)
	pm, err := ParseNewManifest(MediaTypeOCIManifest, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString(body)
	if err := repo.PutManifest(ctx, d, pm, []byte(body), []string{"v1"}, time.Second); err != nil {
		t.Fatal(err)
	}
	var subjects []digest.Digest
	if err := repo.EachReferrer(ctx, func(subj, ref digest.Digest) {
		if ref == d {
			subjects = append(subjects, subj)
		}
	}); err != nil {
		t.Fatal(err)
	}
	tgt := repo.ManifestTarget(d, subjects...)
	want := []string{ReferrerKey("r", subject, d), ManifestKey("r", d)}
	if tgt.ClaimKey() != ManifestKey("r", d) || !slices.Equal(tgt.keys, want) {
		t.Fatalf("target %+v, want claim %s and keys %v", tgt, ManifestKey("r", d), want)
	}
	page, err := repo.Referrers(ctx, subject, ReferrersQuery{MaxEntries: 10, MaxBytes: 1 << 20})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("referrers: %v %+v", err, page)
	}
	if err := s.Delete(ctx, []Target{tgt}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.GetManifest(ctx, d); !errors.Is(err, ErrManifestUnknown) {
		t.Errorf("manifest after delete: %v", err)
	}
	if page, _ := repo.Referrers(ctx, subject, ReferrersQuery{MaxEntries: 10, MaxBytes: 1 << 20}); len(page.Records) != 0 {
		t.Errorf("referrer record left: %d", len(page.Records))
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, inmemory.New())
	repo := mustRepo(t, s, "r")
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	for _, tc := range []struct {
		name    string
		op      func() error
		wantErr error
	}{
		{"set", func() error { return repo.SetTag(ctx, "a", d1) }, nil},
		{"set again to another", func() error { return repo.SetTag(ctx, "a", d2) }, nil},
		{"create new", func() error { return repo.CreateTag(ctx, "b", d1) }, nil},
		{"create same digest again", func() error { return repo.CreateTag(ctx, "b", d1) }, nil},
		{"create over another digest", func() error { return repo.CreateTag(ctx, "b", d2) }, ErrTagExists},
		{"set c", func() error { return repo.SetTag(ctx, "c", d1) }, nil},
		{"delete unknown", func() error { return repo.DeleteTag(ctx, "zz") }, ErrManifestUnknown},
		{"resolve unknown", func() error { _, err := repo.ResolveTag(ctx, "zz"); return err }, ErrManifestUnknown},
	} {
		if err := tc.op(); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	if got, _ := repo.ResolveTag(ctx, "a"); got != d2 {
		t.Errorf("a -> %s, want %s", got, d2)
	}
	if got, _ := repo.ResolveTag(ctx, "b"); got != d1 {
		t.Errorf("b -> %s, want %s", got, d1)
	}
	for _, tc := range []struct {
		last     string
		n        int
		want     []string
		wantMore bool
	}{
		{"", 10, []string{"a", "b", "c"}, false},
		{"", 2, []string{"a", "b"}, true},
		{"b", 2, []string{"c"}, false},
		{"c", 2, []string{}, false},
	} {
		got, more, err := repo.Tags(ctx, tc.last, tc.n)
		if err != nil || !slices.Equal(got, tc.want) || more != tc.wantMore {
			t.Errorf("Tags(%q, %d) = %v %v %v, want %v %v", tc.last, tc.n, got, more, err, tc.want, tc.wantMore)
		}
	}
	if err := repo.untag(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := repo.Tags(ctx, "", 10); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after untag of %s: %v, want [a]", d1, got)
	}
}

func TestCatalog(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, inmemory.New())
	if _, err := s.Repository("Bad/Name"); !errors.Is(err, ErrNameInvalid) {
		t.Fatalf("invalid name: %v", err)
	}
	for _, n := range []string{"a", "a/b", "c"} {
		if err := mustRepo(t, s, n).Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := mustRepo(t, s, "nope").Exists(ctx); !errors.Is(err, ErrNameUnknown) {
		t.Errorf("Exists of unknown: %v", err)
	}
	got, more, err := s.Repositories(ctx, "a", 1)
	if err != nil || !slices.Equal(got, []string{"a/b"}) || !more {
		t.Errorf("Repositories(a, 1) = %v %v %v", got, more, err)
	}
	c := mustRepo(t, s, "c")
	if removed, err := c.RemoveIfEmpty(ctx); err != nil || !removed {
		t.Errorf("RemoveIfEmpty of an empty repository: %v %v", removed, err)
	}
	ab := mustRepo(t, s, "a/b")
	if err := ab.SetTag(ctx, "t", digest.FromString("x")); err != nil {
		t.Fatal(err)
	}
	if removed, err := ab.RemoveIfEmpty(ctx); err != nil || removed {
		t.Errorf("RemoveIfEmpty of a repository with a tag: %v %v", removed, err)
	}
	if err := ab.Exists(ctx); err != nil {
		t.Errorf("a/b lost its catalog entry: %v", err)
	}
}

func TestLink(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, inmemory.New())
	a, b := mustRepo(t, s, "a"), mustRepo(t, s, "b")
	d := putBlob(t, s, a, "u1", []byte("blob"))
	if _, err := b.StatBlob(ctx, d, true); !errors.Is(err, ErrBlobUnknown) {
		t.Fatalf("b serves a blob it does not link: %v", err)
	}
	if err := b.Link(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StatBlob(ctx, d, true); err != nil {
		t.Errorf("after Link: %v", err)
	}
	if err := b.Exists(ctx); err != nil {
		t.Errorf("Link did not list the repository: %v", err)
	}
	if err := b.Link(ctx, digest.FromString("nothing")); !errors.Is(err, ErrBlobUnknown) {
		t.Errorf("Link of a missing blob: %v", err)
	}
	if err := b.Unlink(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StatBlob(ctx, d, true); !errors.Is(err, ErrBlobUnknown) {
		t.Errorf("after Unlink: %v", err)
	}
	if _, err := a.StatBlob(ctx, d, true); err != nil {
		t.Errorf("Unlink from b hid the blob in a: %v", err)
	}
}
