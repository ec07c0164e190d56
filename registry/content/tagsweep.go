package content

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// Retention deletes tags through the same claim protocol as GC's other
// deletions. Tag writes (SetTag, CreateTag) pin the tag key; TagTarget
// claims it. Because the decision to delete was made from a listing read
// before the claim, DeleteTagIfUnchanged reads the tag again under the
// claim and deletes it only if it is still the object that was listed
// (same digest, same modification time): a client that re-tagged between
// the listing and the claim changed one of them. See docs/architecture.md,
// "Retention".

// TagTarget is the deletion of listed tag t; it claims the tag key.
func (r *Repository) TagTarget(t TagEntry) Target {
	return Target{claim: t.key, keys: []string{t.key}}
}

// DeleteTagIfUnchanged deletes listed tag t, which pointed at want when it
// was listed, if it still does and was not written since. The caller holds
// the claim of TagTarget(t). It reports whether it deleted the tag.
func (r *Repository) DeleteTagIfUnchanged(ctx context.Context, t TagEntry, want digest.Digest) (bool, error) {
	info, err := r.s.driver.Stat(ctx, t.key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.ModTime.Equal(t.ModTime) {
		return false, nil
	}
	got, err := r.readTag(ctx, t.key, t.Tag)
	if errors.Is(err, ErrManifestUnknown) {
		return false, nil
	}
	if err != nil || got != want {
		return false, err
	}
	if err := r.s.driver.Delete(ctx, t.key); err != nil {
		return false, err
	}
	return true, nil
}
