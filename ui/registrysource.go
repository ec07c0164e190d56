package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
)

// maxReferrerBytes bounds the referrer records one page reads.
const maxReferrerBytes = 1 << 20

// StoreSource is the Source over a registry's content store
// ((*registry.Registry).Content()). It only reads; blob reads pin the
// blob exactly as a pull does, so GC cannot delete it under the read.
type StoreSource struct {
	store *content.Store
}

// NewStoreSource reads from store.
func NewStoreSource(store *content.Store) *StoreSource { return &StoreSource{store: store} }

// Repositories implements Catalog.
func (s *StoreSource) Repositories(ctx context.Context, prefix, last string, n int) ([]string, bool, error) {
	return s.store.RepositoriesWithPrefix(ctx, prefix, last, n)
}

func (s *StoreSource) repo(name string) (*content.Repository, error) {
	r, err := s.store.Repository(name)
	if err != nil {
		return nil, fmt.Errorf("%w: repository %s", ErrNotFound, name)
	}
	return r, nil
}

// Tags implements Tags: one listing page, then each tag's target and the
// time its object was written.
func (s *StoreSource) Tags(ctx context.Context, name, last string, n int) ([]Tag, bool, error) {
	r, err := s.repo(name)
	if err != nil {
		return nil, false, err
	}
	names, more, err := r.Tags(ctx, last, n)
	if err != nil {
		return nil, false, err
	}
	tags := make([]Tag, 0, len(names))
	for _, t := range names {
		d, err := r.ResolveTag(ctx, t)
		if errors.Is(err, content.ErrManifestUnknown) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, false, err
		}
		info, err := r.TagCheckedAt(ctx, t)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		tags = append(tags, Tag{Name: t, Digest: d, Pushed: info.ModTime})
	}
	return tags, more, nil
}

// ResolveTag implements Tags.
func (s *StoreSource) ResolveTag(ctx context.Context, name, tag string) (digest.Digest, error) {
	r, err := s.repo(name)
	if err != nil {
		return "", err
	}
	d, err := r.ResolveTag(ctx, tag)
	return d, notFound(err)
}

// Manifest implements Content.
func (s *StoreSource) Manifest(ctx context.Context, name string, d digest.Digest) (Manifest, error) {
	r, err := s.repo(name)
	if err != nil {
		return Manifest{}, err
	}
	m, err := r.GetManifest(ctx, d)
	if err != nil {
		return Manifest{}, notFound(err)
	}
	return Manifest{Digest: m.Digest, MediaType: m.MediaType, Body: m.Body}, nil
}

// Blob implements Content.
func (s *StoreSource) Blob(ctx context.Context, name string, d digest.Digest, max int64) ([]byte, error) {
	r, err := s.repo(name)
	if err != nil {
		return nil, err
	}
	b, err := r.ServeBlob(ctx, d)
	if err != nil {
		return nil, notFound(err)
	}
	if b.Size > max {
		return nil, fmt.Errorf("%w: %s is %d bytes, over %d", ErrTooLarge, d, b.Size, max)
	}
	rc, err := s.store.Open(ctx, b, 0, b.Size)
	if err != nil {
		return nil, notFound(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%w: %s", ErrTooLarge, d)
	}
	return body, nil
}

// Referrers implements Referrers.
func (s *StoreSource) Referrers(ctx context.Context, name string, subject digest.Digest, max int) ([]v1.Descriptor, bool, error) {
	r, err := s.repo(name)
	if err != nil {
		return nil, false, err
	}
	page, err := r.Referrers(ctx, subject, content.ReferrersQuery{MaxEntries: max, MaxBytes: maxReferrerBytes})
	if err != nil {
		return nil, false, err
	}
	out := make([]v1.Descriptor, 0, len(page.Records))
	for _, rec := range page.Records {
		var d v1.Descriptor
		if err := json.Unmarshal(rec, &d); err != nil {
			continue // content skips unusable records the same way
		}
		out = append(out, d)
	}
	return out, page.More, nil
}

// notFound maps the content store's "unknown" errors to ErrNotFound.
func notFound(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, content.ErrManifestUnknown), errors.Is(err, content.ErrBlobUnknown),
		errors.Is(err, content.ErrNameUnknown), errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
