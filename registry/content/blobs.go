package content

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// blobRecord is the small object at blobs/<alg>/<..>/<hex>: it names the
// data object holding the bytes. Writing it create-only is the whole blob
// commit, whatever the blob size (docs/architecture.md).
type blobRecord struct {
	Data string `json:"data"`
	Size int64  `json:"size"`
}

// EncodeBlobRecord is the record naming uploadID's data as a blob of size
// bytes, for tests and tools that build a bucket directly.
func EncodeBlobRecord(uploadID string, size int64) []byte {
	b, _ := json.Marshal(blobRecord{Data: DataKey(uploadID), Size: size})
	return b
}

// maxRecordSize bounds what is read back as a record, link or tag.
const maxRecordSize = 4096

// Blob is what the store knows of a committed blob.
type Blob struct {
	Digest digest.Digest
	Size   int64
	// Data names the object holding the bytes.
	Data DataRef
}

// DataRef names the data object of one upload.
type DataRef string

// UploadID is the upload that wrote the data.
func (d DataRef) UploadID() string { return strings.TrimPrefix(string(d), dataPrefix) }

func (s *Store) readRecord(ctx context.Context, d digest.Digest) (Blob, error) {
	b, err := storage.ReadAll(ctx, s.driver, BlobRecordKey(d), maxRecordSize)
	if err != nil {
		return Blob{}, err
	}
	var rec blobRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Data == "" || rec.Size < 0 {
		return Blob{}, fmt.Errorf("%w: blob record %s: %q", ErrCorrupt, d, b)
	}
	return Blob{Digest: d, Size: rec.Size, Data: DataRef(rec.Data)}, nil
}

// Stat returns the global record of d, whichever repositories link it;
// ErrBlobUnknown if there is none. It does not pin: GC uses it.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (Blob, error) {
	b, err := s.readRecord(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		return Blob{}, fmt.Errorf("%w: %s", ErrBlobUnknown, d)
	}
	return b, err
}

// Open reads length bytes of b from offset (length -1: to the end; the
// whole blob is read without a range, which S3 serves faster).
func (s *Store) Open(ctx context.Context, b Blob, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.driver.Reader(ctx, string(b.Data), offset, length)
	if !errors.Is(err, storage.ErrNotFound) {
		return rc, err
	}
	// b came from a link or a record read before this request's pin: the
	// record is the truth. Gone: the blob is unknown (GC removed it before
	// the pin). Naming other data: a link older than the current record.
	rec, rerr := s.readRecord(ctx, b.Digest)
	switch {
	case errors.Is(rerr, storage.ErrNotFound):
		return nil, fmt.Errorf("%w: %s (deleted while being opened)", ErrBlobUnknown, b.Digest)
	case rerr != nil:
		return nil, rerr
	case rec.Data == b.Data:
		return nil, fmt.Errorf("blob %s: record points at missing data %s: %w", b.Digest, b.Data, err)
	}
	return s.driver.Reader(ctx, string(rec.Data), offset, length)
}

// SignedURL is a time-limited URL of b's bytes, for redirecting a pull;
// storage.ErrUnsupported when the driver cannot sign.
func (s *Store) SignedURL(ctx context.Context, b Blob) (string, error) {
	signer, ok := s.driver.(storage.URLSigner)
	if !ok {
		return "", storage.ErrUnsupported
	}
	return signer.SignedURL(ctx, string(b.Data), 0) // 0: the driver's configured expiry
}

// StatBlob returns the record of a blob this repository may serve: the
// repository links it and the blob exists. It pins the link and the digest
// first (best effort unless required), and reads the store every time: no
// replica may believe a blob exists after another one deleted it.
func (r *Repository) StatBlob(ctx context.Context, d digest.Digest, required bool) (Blob, error) {
	if err := r.PinBlob(ctx, d, required); err != nil {
		return Blob{}, err
	}
	return r.verified(ctx, d)
}

// Mount links d into this repository when repository from serves it. It
// reports false when the blob is not there to mount. The link in from and
// the digest are pinned first, then this repository's new link (GC may be
// removing an old link of d here: ErrBeingDeleted).
func (r *Repository) Mount(ctx context.Context, from *Repository, d digest.Digest) (bool, error) {
	if err := from.PinBlob(ctx, d, true); err != nil {
		if errors.Is(err, ErrBlobUnknown) {
			return false, nil
		}
		return false, err
	}
	if err := r.pinNewLink(ctx, d); err != nil {
		return false, err
	}
	b, err := from.verified(ctx, d)
	if err != nil {
		if errors.Is(err, ErrBlobUnknown) {
			return false, nil
		}
		return false, err
	}
	if err := r.link(ctx, b); err != nil {
		return false, err
	}
	return true, nil
}

// Link lets this repository serve blob d, which must exist in the store
// (ErrBlobUnknown otherwise): what an import or a policy that copies
// content between repositories does. The digest and the new link are
// pinned first, so GC either keeps the blob or the link is refused
// (ErrBeingDeleted) before anything is written.
func (r *Repository) Link(ctx context.Context, d digest.Digest) error {
	if err := r.s.PinDigest(ctx, d); err != nil {
		return err
	}
	if err := r.pinNewLink(ctx, d); err != nil {
		return err
	}
	b, err := r.s.Stat(ctx, d)
	if err != nil {
		return err
	}
	return r.link(ctx, b)
}

// pinNewLink pins the link a write is about to create; ErrBeingDeleted
// while GC removes an older link of d.
func (r *Repository) pinNewLink(ctx context.Context, d digest.Digest) error {
	return r.s.pin(ctx, LinkKey(r.name, d), true)
}

// link lets this repository serve b (a v2 link, carrying b's size and data
// key), and lists the repository.
func (r *Repository) link(ctx context.Context, b Blob) error {
	body := encodeLink(b)
	if _, err := r.s.driver.Put(ctx, LinkKey(r.name, b.Digest), bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))}); err != nil {
		return err
	}
	return r.Ensure(ctx)
}

// Unlink removes d from this repository only (the client's blob DELETE);
// ErrBlobUnknown if the repository does not link it. The bytes stay until
// GC finds no repository needs them.
func (r *Repository) Unlink(ctx context.Context, d digest.Digest) error {
	key := LinkKey(r.name, d)
	if _, err := r.s.driver.Stat(ctx, key); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, r.name)
		}
		return err
	}
	// Every process that remembers links of this repository reads them
	// again from here on (linkstamps.go).
	return r.s.links.deleteLinks(ctx, []string{r.name}, r.s.logger, func(ctx context.Context) error {
		return r.s.driver.Delete(ctx, key)
	})
}

// CommitBlob makes the data uploadID wrote (size bytes, verified to hash
// to d) the blob d, and links it into this repository. It is the O(1)
// commit: one create-only record write, however large the blob. The pins
// come first so a concurrent GC cannot claim d, the data key or the new
// link between the record check and the link.
//
// It is idempotent (docs/architecture.md, "Retries"): a record write that
// the store applied but whose answer was lost comes back from the retry as
// ErrExists, and reading the record back shows it names our data key, so
// the commit succeeds. Only a record naming another data key means another
// upload of d won; ours is then deleted. A *RecordNotWrittenError means no
// record exists and nothing was deleted.
func (r *Repository) CommitBlob(ctx context.Context, d digest.Digest, uploadID string, size int64) error {
	s := r.s
	if err := s.PinDigest(ctx, d); err != nil {
		return err
	}
	// The data key is pinned too: GC's orphan sweep claims data keys, and
	// this pin either lands before its claim (it then keeps the object) or
	// fails, in which case nothing is acknowledged.
	if err := s.PinData(ctx, uploadID); err != nil {
		return err
	}
	if err := r.pinNewLink(ctx, d); err != nil {
		return err
	}
	// The data index entry goes before the record, so GC's orphan sweep
	// never finds data a record names without its entry (sweep.go).
	if err := s.putDataIndex(ctx, uploadID, d); err != nil {
		return &RecordNotWrittenError{Err: err}
	}
	key := DataKey(uploadID)
	own := Blob{Digest: d, Size: size, Data: DataRef(key)}
	rec, _ := json.Marshal(blobRecord{Data: key, Size: size})
	_, err := s.driver.Put(ctx, BlobRecordKey(d), strings.NewReader(string(rec)), storage.PutOptions{CreateOnly: true, Size: int64(len(rec))})
	if err != nil {
		// Whatever the error, the record now tells whose data serves d.
		existing, rerr := s.readRecord(ctx, d)
		switch {
		case rerr == nil && existing.Data == DataRef(key):
			// Ours: the write was applied and its answer lost.
		case rerr == nil:
			// Another upload of d committed first; theirs serves, ours goes
			// (index entry first: data without one is re-checked by GC).
			s.deleteDataIndexQuietly(ctx, uploadID, d)
			s.DeleteDataQuietly(ctx, uploadID)
			own = existing
		case errors.Is(rerr, storage.ErrNotFound) && !errors.Is(err, storage.ErrExists):
			return &RecordNotWrittenError{Err: err}
		default:
			// Unknown whose record it is: keep our data (GC removes it if
			// it is nobody's) and let the client retry.
			return fmt.Errorf("blob %s: writing the record failed (%w) and reading it back failed: %w", d, err, rerr)
		}
	}
	// Read before the link is written, so that a deletion of the link
	// after the write replaces the stamp the link is remembered under.
	stamp, live := s.links.liveStamp(ctx, r.name)
	if err := r.link(ctx, own); err != nil {
		return err
	}
	// The first pull of what was just pushed (a CI job, a rollout) can
	// then open the data with the link, or without reading the link.
	s.dataKeys.put(d, own.Data)
	if live {
		s.links.put(r.name, own, stamp)
	}
	return nil
}

// Upload data: the bytes of one upload live at data/<upload-id> until a
// blob record names them or GC removes them as orphans.

// NewUpload starts the multipart write of an upload's data.
func (s *Store) NewUpload(ctx context.Context, uploadID string) (storage.Multipart, error) {
	return s.driver.NewMultipart(ctx, DataKey(uploadID))
}

// ResumeUpload continues a multipart write from its saved handle.
func (s *Store) ResumeUpload(ctx context.Context, handle []byte) (storage.Multipart, error) {
	return s.driver.ResumeMultipart(ctx, handle)
}

// PutData writes a whole upload's data in one request.
func (s *Store) PutData(ctx context.Context, uploadID string, body io.Reader, size int64) (storage.Info, error) {
	return s.driver.Put(ctx, DataKey(uploadID), body, storage.PutOptions{Size: size})
}

// StatData stats an upload's data object.
func (s *Store) StatData(ctx context.Context, uploadID string) (storage.Info, error) {
	return s.driver.Stat(ctx, DataKey(uploadID))
}

// HashData re-reads an upload's data with alg.
func (s *Store) HashData(ctx context.Context, uploadID string, alg digest.Algorithm) (digest.Digest, error) {
	rc, err := s.driver.Reader(ctx, DataKey(uploadID), 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	d, err := alg.FromReader(rc)
	if err != nil {
		return "", fmt.Errorf("hash upload %s: %w", uploadID, err)
	}
	return d, nil
}

// DeleteDataQuietly removes an upload's own data object after a failure,
// even when ctx is done; a failure is logged (GC removes the orphan).
func (s *Store) DeleteDataQuietly(ctx context.Context, uploadID string) {
	key := DataKey(uploadID)
	if err := s.driver.Delete(context.WithoutCancel(ctx), key); err != nil {
		s.logger.Warn("cleanup failed; GC will remove it", "key", key, "err", err)
	}
}

// AbortStaleUploads aborts multipart writes idle since before cutoff,
// through the driver's optional storage.MultipartReaper; ok is false when
// the driver keeps no state for abandoned writes.
func (s *Store) AbortStaleUploads(ctx context.Context, cutoff time.Time, dryRun bool) (n int, ok bool, err error) {
	reaper, ok := s.driver.(storage.MultipartReaper)
	if !ok {
		return 0, false, nil
	}
	n, err = reaper.AbortStale(ctx, cutoff, dryRun)
	return n, true, err
}

// CanReapUploads reports whether the driver keeps state for abandoned
// multipart writes that AbortStaleUploads removes.
func (s *Store) CanReapUploads() bool {
	_, ok := s.driver.(storage.MultipartReaper)
	return ok
}
