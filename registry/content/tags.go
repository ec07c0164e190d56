package content

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// ResolveTag returns the manifest digest tag points at; ErrManifestUnknown
// if the tag is not set.
func (r *Repository) ResolveTag(ctx context.Context, tag string) (digest.Digest, error) {
	return r.readTag(ctx, TagKey(r.name, tag), tag)
}

func (r *Repository) readTag(ctx context.Context, key, tag string) (digest.Digest, error) {
	b, err := storage.ReadAll(ctx, r.s.driver, key, maxRecordSize)
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("%w: tag %s", ErrManifestUnknown, tag)
	}
	if err != nil {
		return "", err
	}
	d, err := ParseDigest(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%w: tag %s of %s: %w", ErrCorrupt, tag, r.name, err)
	}
	return d, nil
}

// SetTag points tag at manifest d, replacing what it pointed at. The tag
// key is pinned first, so retention (which claims it) either sees the pin
// and keeps the tag, or holds the claim and the write fails with
// ErrBeingDeleted; it never deletes a tag just written.
func (r *Repository) SetTag(ctx context.Context, tag string, d digest.Digest) error {
	if err := r.s.pin(ctx, TagKey(r.name, tag), true); err != nil {
		return err
	}
	_, err := r.s.driver.Put(ctx, TagKey(r.name, tag), strings.NewReader(d.String()), storage.PutOptions{Size: int64(len(d.String()))})
	return err
}

// CreateTag points tag at d only if the tag is not set (the immutable-tags
// policy). Setting it to the digest it already has succeeds, so a retried
// create whose answer was lost is not a failure; another digest is
// ErrTagExists.
func (r *Repository) CreateTag(ctx context.Context, tag string, d digest.Digest) error {
	if err := r.s.pin(ctx, TagKey(r.name, tag), true); err != nil {
		return err
	}
	_, err := r.s.driver.Put(ctx, TagKey(r.name, tag), strings.NewReader(d.String()), storage.PutOptions{CreateOnly: true, Size: int64(len(d.String()))})
	if !errors.Is(err, storage.ErrExists) {
		return err
	}
	got, rerr := r.ResolveTag(ctx, tag)
	if rerr != nil {
		return fmt.Errorf("tag %s exists and reading it back failed: %w", tag, rerr)
	}
	if got != d {
		return fmt.Errorf("%w: %s points at %s", ErrTagExists, tag, got)
	}
	return nil
}

// DeleteTag removes tag only; ErrManifestUnknown if it is not set.
func (r *Repository) DeleteTag(ctx context.Context, tag string) error {
	key := TagKey(r.name, tag)
	if _, err := r.s.driver.Stat(ctx, key); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: tag %s", ErrManifestUnknown, tag)
		}
		return err
	}
	return r.s.driver.Delete(ctx, key)
}

// Tags lists up to n tags after last, in order; more reports that tags
// follow. An unknown repository lists no tags (see Exists).
func (r *Repository) Tags(ctx context.Context, last string, n int) (tags []string, more bool, err error) {
	prefix := tagsPrefix(r.name)
	startAfter := ""
	if last != "" {
		startAfter = prefix + last
	}
	return r.s.listNames(ctx, prefix, startAfter, n, func(key string) (string, bool) {
		return strings.TrimPrefix(key, prefix), true
	})
}

// TagEntry is one tag as a listing shows it.
type TagEntry struct {
	Tag string
	// Version is the tag object's version as the listing showed it; its
	// ModTime is when the tag object was last written (by a PUT that named
	// the tag, even with the digest it already had).
	Version
	key string
}

// EachTagPage calls fn with the repository's tags one listing page at a
// time; ResolveEntry reads where each points.
func (r *Repository) EachTagPage(ctx context.Context, fn func([]TagEntry) error) error {
	prefix := tagsPrefix(r.name)
	return r.s.eachPage(ctx, prefix, func(objs []storage.Info) error {
		page := make([]TagEntry, len(objs))
		for i, o := range objs {
			page[i] = TagEntry{Tag: strings.TrimPrefix(o.Key, prefix), Version: versionOf(o), key: o.Key}
		}
		return fn(page)
	})
}

// ResolveEntry is ResolveTag for a listed tag.
func (r *Repository) ResolveEntry(ctx context.Context, t TagEntry) (digest.Digest, error) {
	return r.readTag(ctx, t.key, t.Tag)
}

// untag deletes every tag that points at d, page by page.
func (r *Repository) untag(ctx context.Context, d digest.Digest) error {
	return r.EachTagPage(ctx, func(page []TagEntry) error {
		var doomed []string
		for _, t := range page {
			got, err := r.ResolveEntry(ctx, t)
			if errors.Is(err, ErrManifestUnknown) || errors.Is(err, ErrCorrupt) {
				continue
			}
			if err != nil {
				return err
			}
			if got == d {
				doomed = append(doomed, t.key)
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		return r.s.driver.DeleteBatch(ctx, doomed)
	})
}
