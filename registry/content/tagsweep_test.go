package content

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage/inmemory"
)

// TestDeleteTagIfUnchanged: a tag listed for deletion is deleted under its
// claim only if no client wrote it after the listing.
func TestDeleteTagIfUnchanged(t *testing.T) {
	ctx := context.Background()
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	for _, tc := range []struct {
		name string
		// between runs after the listing, before the claim.
		between     func(r *Repository) error
		wantDeleted bool
		want        digest.Digest // where the tag points afterwards ("" gone)
	}{
		{"unchanged", func(*Repository) error { return nil }, true, ""},
		{"re-tagged to another manifest", func(r *Repository) error { return r.SetTag(ctx, "t", d2) }, false, d2},
		{"re-pushed with the same manifest", func(r *Repository) error {
			time.Sleep(2 * time.Millisecond) // a new modification time, at the store's resolution
			return r.SetTag(ctx, "t", d1)
		}, false, d1},
		{"deleted by a client", func(r *Repository) error { return r.DeleteTag(ctx, "t") }, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t, inmemory.New())
			repo := mustRepo(t, s, "r")
			if err := repo.SetTag(ctx, "t", d1); err != nil {
				t.Fatal(err)
			}
			var listed TagEntry
			if err := repo.EachTagPage(ctx, func(page []TagEntry) error { listed = page[0]; return nil }); err != nil {
				t.Fatal(err)
			}
			if err := tc.between(repo); err != nil {
				t.Fatal(err)
			}
			target := repo.TagTarget(listed)
			// Every pin so far is older than the cutoff, so the claim holds.
			ok, err := s.Claim(ctx, target, time.Now().Add(time.Hour), time.Minute)
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			if err := repo.SetTag(ctx, "t", d2); !errors.Is(err, ErrBeingDeleted) {
				t.Fatalf("SetTag under the claim: %v, want ErrBeingDeleted", err)
			}
			if err := repo.CreateTag(ctx, "t", d2); !errors.Is(err, ErrBeingDeleted) {
				t.Fatalf("CreateTag under the claim: %v, want ErrBeingDeleted", err)
			}
			deleted, err := repo.DeleteTagIfUnchanged(ctx, listed, d1)
			if err != nil || deleted != tc.wantDeleted {
				t.Fatalf("deleted %v (%v), want %v", deleted, err, tc.wantDeleted)
			}
			if err := s.Unclaim(ctx, target); err != nil {
				t.Fatal(err)
			}
			got, err := repo.ResolveTag(ctx, "t")
			if tc.want == "" && !errors.Is(err, ErrManifestUnknown) || tc.want != "" && got != tc.want {
				t.Fatalf("tag is %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// TestTagWritePinBlocksClaim: a tag written since the cutoff keeps
// retention's claim off it.
func TestTagWritePinBlocksClaim(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, inmemory.New())
	repo := mustRepo(t, s, "r")
	cutoff := time.Now().Add(-time.Minute)
	if err := repo.SetTag(ctx, "t", digest.FromString("one")); err != nil {
		t.Fatal(err)
	}
	var listed TagEntry
	if err := repo.EachTagPage(ctx, func(page []TagEntry) error { listed = page[0]; return nil }); err != nil {
		t.Fatal(err)
	}
	ok, err := s.Claim(ctx, repo.TagTarget(listed), cutoff, time.Minute)
	if err != nil || ok {
		t.Fatalf("claim of a freshly pinned tag: %v %v, want refused", ok, err)
	}
}
