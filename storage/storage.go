// Package storage defines the object-store driver interface that every backend
// (filesystem, inmemory, s3, gcs, azure) implements, and the errors they share.
//
// The interface is shaped for object stores, not filesystems: there is no
// rename, no directory and no walk. Keys are slash-separated strings; a driver
// maps them onto its own namespace (a root directory, a bucket prefix).
// Everything registry-specific (the bucket layout, digests) lives above it.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Drivers wrap them (usually in an *OpError) so callers
// branch with errors.Is, never on SDK types or provider strings.
var (
	// ErrNotFound: the key does not exist (Stat, Reader) or a multipart handle
	// refers to an upload the store no longer has.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists: a create-only Put lost because the key already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrInvalidRange: Reader was asked for an offset past the object's end.
	ErrInvalidRange = errors.New("storage: invalid range")
	// ErrUnsupported: the driver lacks an optional capability.
	ErrUnsupported = errors.New("storage: unsupported")
	// ErrHandleExpired: a multipart handle can no longer be resumed (the store
	// expired or aborted the upload, or the handle is from another driver).
	ErrHandleExpired = errors.New("storage: multipart handle expired")
	// ErrInvalidKey: the key is empty, absolute, or contains "." or ".."
	// segments. Drivers reject such keys before touching the store.
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrFull: the store has no space left (ENOSPC, a quota). Nothing
	// partial was left behind; the same write works once space is freed.
	ErrFull = errors.New("storage: no space left")
	// ErrMisconfigured: the store refuses us for a reason no retry fixes
	// (access denied, bad credentials, a missing bucket). The wrapped
	// error names the cause for the operator.
	ErrMisconfigured = errors.New("storage: backend misconfigured")
)

// Retryable reports whether an error is transient (throttling, timeouts, 5xx)
// so that a caller may try the same operation again. Drivers mark such errors
// by wrapping them in a *TransientError.
func Retryable(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// Throttled reports whether the store asked us to slow down; the registry
// answers 429 instead of 503 for these.
func Throttled(err error) bool {
	var t *TransientError
	return errors.As(err, &t) && t.Throttled
}

// TransientError marks a failure that may succeed when retried.
type TransientError struct {
	Throttled bool
	Err       error
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// OpError records which driver operation on which key failed.
type OpError struct {
	Op     string
	Driver string
	Key    string
	Err    error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("%s %s %q: %v", e.Driver, e.Op, e.Key, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is opaque and changes whenever the content changes; empty if the
	// store has none.
	ETag string
}

// PutOptions tune a whole-object write.
type PutOptions struct {
	// CreateOnly makes the write fail with ErrExists if the key exists. The
	// check and the write are atomic: of two concurrent create-only writers
	// exactly one wins.
	CreateOnly bool
	// Size is the body length if known, or -1. Drivers use it to choose
	// between a single request and a multipart upload.
	Size int64
	// ContentType is stored where the backend supports it.
	ContentType string
}

// ListPage is one page of a listing, in lexical key order.
type ListPage struct {
	Objects []Info
	// More is true when keys after the last one returned may exist; pass
	// the last key as startAfter to continue.
	More bool
}

// Driver is the object-store interface. Every method that does I/O takes a
// context first. Implementations are safe for concurrent use.
type Driver interface {
	// Name identifies the driver in logs and errors ("filesystem", "s3").
	Name() string
	// Stat returns the object's metadata or ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Reader streams length bytes starting at offset; length < 0 reads to the
	// end. An offset equal to the size yields an empty stream; an offset past
	// it is ErrInvalidRange. A length past the end is truncated to the end.
	Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Put writes a whole object from a stream. A reader of the key sees either
	// the old object or the complete new one, never a partial write.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error)
	// List returns up to limit objects whose keys start with prefix and sort
	// after startAfter (which may be empty). limit <= 0 means the driver's
	// page size. A listing never loads more than one page into memory.
	List(ctx context.Context, prefix, startAfter string, limit int) (ListPage, error)
	// Delete removes one object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteBatch removes many objects, batched as the store allows.
	// Missing keys are not an error.
	DeleteBatch(ctx context.Context, keys []string) error
	// NewMultipart starts a resumable write that will become key on Commit.
	NewMultipart(ctx context.Context, key string) (Multipart, error)
	// ResumeMultipart continues a write from a handle saved by any instance
	// of the same driver, in any process.
	ResumeMultipart(ctx context.Context, handle []byte) (Multipart, error)
	// Close releases the driver's resources.
	Close() error
}

// Multipart is a resumable write. A value is not safe for concurrent use;
// callers serialise writers of one upload (a lease in the registry).
//
// Append is all-or-nothing from the point of view of the saved handle: if it
// fails, the writer must be discarded and the write resumed from the last
// handle saved after a successful Append. Bytes of the failed Append are
// never visible after such a resume.
type Multipart interface {
	// Append streams r to the end of the write and returns how many bytes it
	// took. Memory use is bounded by the driver's part size.
	Append(ctx context.Context, r io.Reader) (int64, error)
	// Size is the number of bytes accepted so far.
	Size() int64
	// Handle serialises the state needed to resume after the last Append.
	Handle() ([]byte, error)
	// Commit makes the written bytes visible at the key, atomically.
	Commit(ctx context.Context) (Info, error)
	// Abort discards everything written. Aborting twice is not an error.
	Abort(ctx context.Context) error
}

// URLSigner is an optional capability: a time-limited URL that reads the
// object directly from the store, for redirecting pulls. ttl <= 0 means the
// expiry the driver is configured with (its redirect_expiry); the registry
// always passes 0, so the operator's setting is the one that counts.
type URLSigner interface {
	SignedURL(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// ValidKey reports whether key is acceptable to every driver: non-empty,
// relative, slash-separated, without empty, "." or ".." segments.
func ValidKey(key string) bool {
	if key == "" || len(key) > 1024 {
		return false
	}
	start := 0
	for i := 0; i <= len(key); i++ {
		if i == len(key) || key[i] == '/' {
			seg := key[start:i]
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
			start = i + 1
			continue
		}
		if key[i] == '\\' || key[i] == 0 {
			return false
		}
	}
	return true
}

// CheckKey returns an *OpError wrapping ErrInvalidKey when key is not valid.
func CheckKey(driver, op, key string) error {
	if ValidKey(key) {
		return nil
	}
	return &OpError{Op: op, Driver: driver, Key: key, Err: ErrInvalidKey}
}

// ReadAll reads a whole (small) object. Callers use it for records and
// manifests whose size they bound; it refuses objects over max bytes.
func ReadAll(ctx context.Context, d Driver, key string, max int64) ([]byte, error) {
	rc, err := d.Reader(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &OpError{Op: "read", Driver: d.Name(), Key: key, Err: fmt.Errorf("object larger than %d bytes", max)}
	}
	return b, nil
}

// MultipartReaper is an optional capability of drivers whose abandoned
// multipart writes leave state behind (a data file, an S3 multipart upload
// and its tail objects). Garbage collection calls it for writes whose upload
// session expired: a write that saw no Append since cutoff can no longer be
// resumed by anyone, because sessions expire sooner.
type MultipartReaper interface {
	// AbortStale aborts every multipart write with no activity since
	// cutoff and returns how many it aborted (or, with dryRun, would abort).
	AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error)
}

// ContextReader returns a reader that fails with the context's error once
// ctx is done, so a cancelled request stops a copy between two reads
// instead of running to the end of the stream.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
