package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// ImportOptions are the registry settings an import applies as a push
// would.
type ImportOptions struct {
	// MaxManifestSize bounds each manifest read from the layout.
	MaxManifestSize int64
	// PinTimeout bounds the reference checks of each manifest write
	// (registry.pin_timeout).
	PinTimeout time.Duration
	// Immutable, if set, names the rule that makes tag of repo
	// create-only (policies.immutable_tags): such a tag is written only if
	// it does not exist, and an import that would move it fails.
	Immutable func(repo, tag string) (rule string, ok bool)
}

// ErrImmutableTag: the archive would move a tag an immutable-tags rule
// protects.
var ErrImmutableTag = errors.New("tag is immutable")

// ImportStats counts what an import wrote and what the store already had.
type ImportStats struct {
	BlobsImported, BlobsPresent         int
	ManifestsImported, ManifestsPresent int
	TagsSet, TagsPresent                int
}

// Imported is the number of objects the import wrote.
func (s ImportStats) Imported() int { return s.BlobsImported + s.ManifestsImported + s.TagsSet }

// Present is the number of objects the store already had.
func (s ImportStats) Present() int { return s.BlobsPresent + s.ManifestsPresent + s.TagsPresent }

// Import loads the layout at in (a directory or a tar file) into store:
// per repository, every blob (digest verified while it streams into the
// store, committed as an upload is), then every manifest, children first
// (digest verified, written with the same pin-then-check of references as
// a manifest PUT), then the tags. What the store already has is left as
// it is, so importing a layout twice changes nothing.
func Import(ctx context.Context, store *content.Store, in string, opts ImportOptions) (ImportStats, error) {
	if opts.MaxManifestSize <= 0 || opts.PinTimeout <= 0 {
		return ImportStats{}, errors.New("transfer: MaxManifestSize and PinTimeout must be positive")
	}
	src, err := openSource(in)
	if err != nil {
		return ImportStats{}, err
	}
	defer src.Close()
	entries, err := readLayout(src, opts.MaxManifestSize)
	if err != nil {
		return ImportStats{}, err
	}
	im := &importer{store: store, src: src, opts: opts}
	var order []string
	byRepo := make(map[string][]Entry)
	for _, e := range entries {
		if byRepo[e.Repository] == nil {
			order = append(order, e.Repository)
		}
		byRepo[e.Repository] = append(byRepo[e.Repository], e)
	}
	for _, name := range order {
		if err := im.importRepository(ctx, name, byRepo[name]); err != nil {
			return im.stats, fmt.Errorf("repository %s: %w", name, err)
		}
	}
	return im.stats, nil
}

// readLayout checks the oci-layout marker and returns index.json's entries.
func readLayout(src source, maxManifest int64) ([]Entry, error) {
	marker, err := readFile(src, layoutFile, maxLayoutFileSize)
	if err != nil {
		return nil, err
	}
	if err := parseLayoutFile(marker); err != nil {
		return nil, err
	}
	idx, err := readFile(src, indexFile, maxIndexSize)
	if err != nil {
		return nil, err
	}
	return parseIndex(idx, maxManifest)
}

func readFile(src source, p string, limit int64) ([]byte, error) {
	rc, size, err := src.open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, invalid("%s is missing", src.describe(p))
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > limit {
		return nil, invalid("%s is %d bytes, over the %d allowed", src.describe(p), size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.describe(p), err)
	}
	return b, nil
}

type importer struct {
	store *content.Store
	src   source
	opts  ImportOptions
	stats ImportStats
}

// manifestRef is a manifest of the layout to import. mediaType is the
// one its index.json entry claims, which the body must match; "" for an
// index child, whose body alone says what it is.
type manifestRef struct {
	digest    digest.Digest
	mediaType string
	size      int64
}

// plan is what one repository's import writes, in order.
type plan struct {
	manifests []manifestRef          // children before parents
	blobs     []content.Ref          // each once
	seen      map[digest.Digest]bool // manifests and blobs already planned
}

func (im *importer) importRepository(ctx context.Context, name string, entries []Entry) error {
	repo, err := im.store.Repository(name)
	if err != nil {
		return err
	}
	p := &plan{seen: make(map[digest.Digest]bool)}
	for _, e := range entries {
		d := e.Descriptor
		if err := im.walk(p, manifestRef{digest: d.Digest, mediaType: d.MediaType, size: d.Size}); err != nil {
			return err
		}
	}
	for _, b := range p.blobs {
		if err := im.importBlob(ctx, repo, b); err != nil {
			return err
		}
	}
	for _, m := range p.manifests {
		if err := im.importManifest(ctx, repo, m); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if e.Tag == "" {
			continue
		}
		if err := im.importTag(ctx, repo, e.Tag, e.Descriptor.Digest); err != nil {
			return err
		}
	}
	return nil
}

// walk reads manifest m from the layout and plans it after everything it
// references. Only manifests are read here; blobs are streamed later.
func (im *importer) walk(p *plan, m manifestRef) error {
	if p.seen[m.digest] {
		return nil
	}
	p.seen[m.digest] = true
	_, pm, err := im.readManifest(m)
	if err != nil {
		return err
	}
	for _, ref := range pm.Refs {
		if !ref.Manifest {
			if !p.seen[ref.Digest] {
				p.seen[ref.Digest] = true
				p.blobs = append(p.blobs, ref)
			}
			continue
		}
		if ref.Size <= 0 || ref.Size > im.opts.MaxManifestSize {
			return invalid("manifest %s: %s: child manifest size %d is outside 1..%d", m.digest, ref.Where, ref.Size, im.opts.MaxManifestSize)
		}
		// A child's media type comes from its own body (the index's
		// descriptor is not trusted for it).
		child := manifestRef{digest: ref.Digest, size: ref.Size}
		if err := im.walk(p, child); err != nil {
			return err
		}
	}
	p.manifests = append(p.manifests, m)
	return nil
}

// readManifest reads manifest m from the layout, checks its size and
// digest, and validates it as a push would.
func (im *importer) readManifest(m manifestRef) ([]byte, *content.Parsed, error) {
	body, err := im.readVerified(m.digest, m.size)
	if err != nil {
		return nil, nil, err
	}
	pm, err := content.ParseNewManifest(m.mediaType, body)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s (%s): %w", m.digest, im.src.describe(blobPath(m.digest)), err)
	}
	return body, pm, nil
}

// readVerified reads the small layout blob d of size bytes into memory
// and checks its digest.
func (im *importer) readVerified(d digest.Digest, size int64) ([]byte, error) {
	p := blobPath(d)
	body, err := readFile(im.src, p, size)
	if err != nil {
		return nil, err
	}
	if int64(len(body)) != size {
		return nil, invalid("%s is %d bytes, its descriptor says %d", im.src.describe(p), len(body), size)
	}
	if got := d.Algorithm().FromBytes(body); got != d {
		return nil, &DigestMismatchError{Want: d, Got: got, File: im.src.describe(p)}
	}
	return body, nil
}

// importBlob makes blob ref available in repo: already linked, linked
// from another repository's copy, or streamed from the layout into a new
// upload's data, verified on the way, and committed as an upload is.
func (im *importer) importBlob(ctx context.Context, repo *content.Repository, ref content.Ref) error {
	b, err := repo.StatBlob(ctx, ref.Digest, true)
	switch {
	case err == nil && b.Size == ref.Size:
		im.stats.BlobsPresent++
		return nil
	case err == nil:
		return fmt.Errorf("blob %s: the store has %d bytes, the layout's descriptor says %d", ref.Digest, b.Size, ref.Size)
	case !errors.Is(err, content.ErrBlobUnknown):
		return fmt.Errorf("blob %s: %w", ref.Digest, err)
	}
	if _, err := im.store.Stat(ctx, ref.Digest); err == nil {
		if err := repo.Link(ctx, ref.Digest); err != nil {
			return fmt.Errorf("link blob %s: %w", ref.Digest, err)
		}
		im.stats.BlobsImported++
		return nil
	} else if !errors.Is(err, content.ErrBlobUnknown) {
		return fmt.Errorf("blob %s: %w", ref.Digest, err)
	}
	if err := im.streamBlob(ctx, repo, ref); err != nil {
		return err
	}
	im.stats.BlobsImported++
	return nil
}

func (im *importer) streamBlob(ctx context.Context, repo *content.Repository, ref content.Ref) error {
	p := blobPath(ref.Digest)
	rc, size, err := im.src.open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return invalid("blob %s (%s) is missing from the layout", ref.Digest, ref.Where)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	if size != ref.Size {
		return invalid("%s is %d bytes, its descriptor says %d", im.src.describe(p), size, ref.Size)
	}
	id := newUploadID()
	digester := ref.Digest.Algorithm().Digester()
	info, err := im.store.PutData(ctx, id, io.TeeReader(rc, digester.Hash()), size)
	if err != nil {
		im.store.DeleteDataQuietly(ctx, id)
		return fmt.Errorf("write blob %s: %w", ref.Digest, err)
	}
	if got := digester.Digest(); got != ref.Digest || info.Size != size {
		// Nothing names the data yet: removing it leaves no trace of d.
		im.store.DeleteDataQuietly(ctx, id)
		return &DigestMismatchError{Want: ref.Digest, Got: got, File: im.src.describe(p)}
	}
	if err := repo.CommitBlob(ctx, ref.Digest, id, size); err != nil {
		var notWritten *content.RecordNotWrittenError
		if errors.As(err, &notWritten) {
			im.store.DeleteDataQuietly(ctx, id)
		}
		return fmt.Errorf("commit blob %s: %w", ref.Digest, err)
	}
	return nil
}

// importManifest writes manifest m unless repo has it. The manifest key is
// pinned before the existence check, so GC cannot delete an untagged copy
// between the check and the tags that follow.
func (im *importer) importManifest(ctx context.Context, repo *content.Repository, m manifestRef) error {
	if err := repo.PinManifest(ctx, m.digest); err != nil {
		return fmt.Errorf("manifest %s: %w", m.digest, err)
	}
	size, err := repo.ManifestSize(ctx, m.digest)
	switch {
	case err == nil && size == m.size:
		im.stats.ManifestsPresent++
		return nil
	case err == nil:
		return fmt.Errorf("%w: manifest %s is stored with %d bytes, not %d", content.ErrCorrupt, m.digest, size, m.size)
	case !errors.Is(err, content.ErrManifestUnknown):
		return fmt.Errorf("manifest %s: %w", m.digest, err)
	}
	body, pm, err := im.readManifest(m)
	if err != nil {
		return err
	}
	if err := repo.PutManifest(ctx, m.digest, pm, body, nil, im.opts.PinTimeout); err != nil {
		return fmt.Errorf("manifest %s: %w", m.digest, err)
	}
	im.stats.ManifestsImported++
	return nil
}

// importTag points tag at d unless it already does. The manifest is
// pinned first, as a tagging PUT pins it.
func (im *importer) importTag(ctx context.Context, repo *content.Repository, tag string, d digest.Digest) error {
	if err := repo.PinManifest(ctx, d); err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	cur, err := repo.ResolveTag(ctx, tag)
	switch {
	case err == nil && cur == d:
		im.stats.TagsPresent++
		return nil
	case err != nil && !errors.Is(err, content.ErrManifestUnknown):
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	if err := im.writeTag(ctx, repo, tag, d, err == nil); err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	im.stats.TagsSet++
	return nil
}

// writeTag points tag at d; under an immutable-tags rule only with a
// create-only write, as a manifest PUT does, so an import never moves a
// protected tag (nor races a push of it).
func (im *importer) writeTag(ctx context.Context, repo *content.Repository, tag string, d digest.Digest, exists bool) error {
	if im.opts.Immutable == nil {
		return repo.SetTag(ctx, tag, d)
	}
	rule, ok := im.opts.Immutable(repo.Name(), tag)
	if !ok {
		return repo.SetTag(ctx, tag, d)
	}
	if exists {
		return fmt.Errorf("%w by rule %s: it points at another manifest in this store", ErrImmutableTag, rule)
	}
	// CreateTag accepts the same digest written meanwhile (a push, or an
	// earlier attempt whose answer was lost).
	err := repo.CreateTag(ctx, tag, d)
	if errors.Is(err, content.ErrTagExists) {
		return fmt.Errorf("%w by rule %s: it was created meanwhile with another manifest", ErrImmutableTag, rule)
	}
	return err
}

// newUploadID is a fresh upload id, as the registry's uploads use: 128
// random bits in hex, safe in any storage key.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
