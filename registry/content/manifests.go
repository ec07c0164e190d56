package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/storage"
)

// Manifest is a stored manifest: its bytes exactly as pushed.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Body      []byte
}

// GetManifest reads manifest d; ErrManifestUnknown if the repository does
// not have it.
func (r *Repository) GetManifest(ctx context.Context, d digest.Digest) (Manifest, error) {
	b, err := storage.ReadAll(ctx, r.s.driver, ManifestKey(r.name, d), r.s.opts.MaxManifestSize+maxMediaTypeLine)
	if errors.Is(err, storage.ErrNotFound) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrManifestUnknown, d)
	}
	if err != nil {
		return Manifest{}, err
	}
	mt, body, err := decodeStoredManifest(b)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest %s in %s: %w", ErrCorrupt, d, r.name, err)
	}
	return Manifest{Digest: d, MediaType: mt, Body: body}, nil
}

// Parse validates the stored manifest as GC and deletes read it (see
// ParseManifest: whatever was ever accepted).
func (m Manifest) Parse() (*Parsed, error) { return ParseManifest(m.MediaType, m.Body) }

// ManifestSize returns the size of manifest d as pushed, from a Stat and a
// read of the media type line, so checking an index's children never reads
// their bodies. Manifest keys are content-addressed: the object cannot
// change between the two calls, only disappear (ErrManifestUnknown).
func (r *Repository) ManifestSize(ctx context.Context, d digest.Digest) (int64, error) {
	key := ManifestKey(r.name, d)
	info, err := r.s.driver.Stat(ctx, key)
	if err != nil {
		return 0, notFoundAs(err, ErrManifestUnknown, d)
	}
	rc, err := r.s.driver.Reader(ctx, key, 0, min(info.Size, maxMediaTypeLine))
	if err != nil {
		return 0, notFoundAs(err, ErrManifestUnknown, d)
	}
	defer rc.Close()
	head, err := io.ReadAll(io.LimitReader(rc, maxMediaTypeLine))
	if err != nil {
		return 0, fmt.Errorf("read the media type line of %s: %w", key, err)
	}
	i := bytes.IndexByte(head, '\n')
	if i <= 0 {
		return 0, fmt.Errorf("%w: stored manifest %s has no media type line", ErrCorrupt, key)
	}
	return info.Size - int64(i) - 1, nil
}

func notFoundAs(err, sentinel error, d digest.Digest) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %s", sentinel, d)
	}
	return err
}

// PutManifest stores manifest body (digest d, validated as pm) byte for
// byte, records it as a referrer of its subject, points tags at it and
// lists the repository.
//
// The manifest's own key is pinned first: re-pushing (or tagging) a
// manifest that GC is about to delete as untagged must either stop GC or
// fail here with ErrBeingDeleted. Then every reference is pinned BEFORE it
// is checked (CheckReferences), within pinTimeout, which is shorter than
// the GC grace period.
func (r *Repository) PutManifest(ctx context.Context, d digest.Digest, pm *Parsed, body []byte, tags []string, pinTimeout time.Duration) error {
	if err := r.s.pin(ctx, ManifestKey(r.name, d), true); err != nil {
		return err
	}
	if err := r.CheckReferences(ctx, pm, pinTimeout); err != nil {
		return err
	}
	stored := encodeStoredManifest(pm.MediaType, body)
	if _, err := r.s.driver.Put(ctx, ManifestKey(r.name, d), bytes.NewReader(stored), storage.PutOptions{Size: int64(len(stored)), ContentType: pm.MediaType}); err != nil {
		return err
	}
	if pm.Subject != nil {
		if err := r.AddReferrer(ctx, *pm.Subject, d, pm, int64(len(body))); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if err := r.SetTag(ctx, t, d); err != nil {
			return err
		}
	}
	return r.Ensure(ctx)
}

// refCheckConcurrency bounds parallel reference checks of one manifest PUT.
const refCheckConcurrency = 8

// CheckReferences verifies that every blob and child manifest pm needs is
// in the repository. Each digest is pinned BEFORE it is checked
// (design.md §6), so GC either sees the pin and keeps the blob, or has
// already claimed it and the pin fails: there is no window in which the
// check passes and the blob then disappears.
func (r *Repository) CheckReferences(ctx context.Context, pm *Parsed, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(refCheckConcurrency)
	for _, ref := range pm.Refs {
		eg.Go(func() error { return r.checkReference(ctx, ref) })
	}
	return eg.Wait()
}

func (r *Repository) checkReference(ctx context.Context, ref Ref) error {
	var size int64
	var err error
	if ref.Manifest {
		if err = r.PinManifest(ctx, ref.Digest); err == nil {
			size, err = r.ManifestSize(ctx, ref.Digest)
		}
	} else {
		var b Blob
		b, err = r.StatBlob(ctx, ref.Digest, true)
		size = b.Size
	}
	switch {
	case errors.Is(err, ErrManifestUnknown), errors.Is(err, ErrBlobUnknown):
		return &ReferenceError{Ref: ref, Repo: r.name, Missing: true}
	case err != nil:
		return err
	case size != ref.Size:
		return &ReferenceError{Ref: ref, Repo: r.name, Size: size}
	}
	return nil
}

// ReferenceError: a manifest references a blob or child manifest the
// repository does not have (Missing; matches ErrReferenceUnknown), or whose
// size differs from its descriptor's (matches ErrManifestInvalid).
type ReferenceError struct {
	Ref     Ref
	Repo    string
	Missing bool
	Size    int64 // the actual size, when not Missing
}

// ErrReferenceUnknown: see ReferenceError.
var ErrReferenceUnknown = errors.New("manifest references unknown content")

func (e *ReferenceError) what() string {
	if e.Ref.Manifest {
		return "child manifest"
	}
	return "blob"
}

func (e *ReferenceError) Error() string {
	if e.Missing {
		return fmt.Sprintf("%s %s is not in repository %s; push it first", e.what(), e.Ref.Digest, e.Repo)
	}
	if e.Ref.Manifest {
		return fmt.Sprintf("%s: the descriptor of child manifest %s says %d bytes but the manifest has %d", e.Ref.Where, e.Ref.Digest, e.Ref.Size, e.Size)
	}
	return fmt.Sprintf("%s: the descriptor of %s says %d bytes but the blob has %d", e.Ref.Where, e.Ref.Digest, e.Ref.Size, e.Size)
}

// Is matches ErrReferenceUnknown or ErrManifestInvalid.
func (e *ReferenceError) Is(target error) bool {
	return target == ErrReferenceUnknown && e.Missing || target == ErrManifestInvalid && !e.Missing
}

// DeleteManifest deletes manifest d: first the tags that point at it (a tag
// never points at a missing manifest), then its referrer record, then the
// manifest. ErrManifestUnknown if the repository does not have it.
func (r *Repository) DeleteManifest(ctx context.Context, d digest.Digest) error {
	m, err := r.GetManifest(ctx, d)
	if err != nil {
		return err
	}
	if err := r.untag(ctx, d); err != nil {
		return err
	}
	if pm, err := m.Parse(); err == nil && pm.Subject != nil {
		if err := r.RemoveReferrer(ctx, *pm.Subject, d); err != nil {
			return err
		}
	}
	return r.s.driver.Delete(ctx, ManifestKey(r.name, d))
}

// storedManifest is the object at repos/<name>/_manifests/<alg>/<hex>: the
// media type on the first line, then the manifest exactly as pushed. One
// object keeps a manifest GET to one read.
func encodeStoredManifest(mediaType string, body []byte) []byte {
	out := make([]byte, 0, len(mediaType)+1+len(body))
	out = append(out, mediaType...)
	out = append(out, '\n')
	return append(out, body...)
}

// EncodeStoredManifest is the stored form of a manifest, for tests and
// tools that build a bucket directly.
func EncodeStoredManifest(mediaType string, body []byte) []byte {
	return encodeStoredManifest(mediaType, body)
}

// maxMediaTypeLine bounds the first line of a stored manifest: media types
// are at most 255 characters (RFC 6838 §4.2), and Stratus stores only the
// few it accepts.
const maxMediaTypeLine = 256
