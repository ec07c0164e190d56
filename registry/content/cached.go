package content

import (
	"bytes"
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// PutCachedManifest stores a manifest a pull-through mirror fetched, and
// points tag (if not empty) at it. Unlike PutManifest it does not require
// the referenced blobs: a mirror receives a manifest before its layers,
// which it fetches when they are pulled. The caller has verified that body
// has digest d. The manifest key is pinned first, so a GC pass running
// meanwhile either keeps it or makes this fail with ErrBeingDeleted.
func (r *Repository) PutCachedManifest(ctx context.Context, d digest.Digest, pm *Parsed, body []byte, tag string) error {
	if err := r.s.pin(ctx, ManifestKey(r.name, d), true); err != nil {
		return err
	}
	stored := encodeStoredManifest(pm.MediaType, body)
	if _, err := r.s.driver.Put(ctx, ManifestKey(r.name, d), bytes.NewReader(stored), storage.PutOptions{Size: int64(len(stored)), ContentType: pm.MediaType}); err != nil {
		return err
	}
	if tag != "" {
		if err := r.SetTag(ctx, tag, d); err != nil {
			return err
		}
	}
	return r.Ensure(ctx)
}

// TagCheckedAt is when tag was last written: a mirror rewrites a tag each
// time it confirms it upstream, so this is the time of its last check.
func (r *Repository) TagCheckedAt(ctx context.Context, tag string) (storage.Info, error) {
	return r.s.driver.Stat(ctx, TagKey(r.name, tag))
}
