package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

// session is the upload-session record kept in the locking store
// (design.md §5). It is everything a replica needs to continue an upload
// another replica started.
type session struct {
	Repo string `json:"repo"`
	// Alg is the digest algorithm being computed; empty until the first
	// byte arrives, so that a PUT ?digest=sha512:... of a whole blob hashes
	// with the right algorithm.
	Alg string `json:"alg,omitempty"`
	// Offset is the number of bytes accepted and saved.
	Offset int64 `json:"offset"`
	// Handle is the driver's multipart handle; empty before the first byte.
	Handle []byte `json:"handle,omitempty"`
	// Hash is the marshalled hash state after Offset bytes.
	Hash    []byte    `json:"hash,omitempty"`
	Created time.Time `json:"created"`
	// Committed is the digest whose bytes the multipart write committed to
	// the upload's data key. A final PUT that failed after the commit (a
	// record or link write that timed out) is retried from here: the
	// retry writes the record and link again instead of finding the
	// multipart write gone and answering 404.
	Committed string `json:"committed,omitempty"`
}

func errUploadUnknown(id string) *apiError {
	return newError(http.StatusNotFound, codeBlobUploadUnknown, "upload %q is not known (finished, cancelled or expired)", id)
}

// newUploadID returns 128 random bits in hex: unguessable, so an upload URL
// is a capability, and safe in any storage key.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func blobLocation(name string, d Digest) string { return "/v2/" + name + "/blobs/" + d.String() }

// rangeHeader renders the bytes received so far the way the reference
// registry does ("0-0" for none), which every client parses.
func rangeHeader(offset int64) string {
	if offset == 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(offset-1, 10)
}

func writeUploadStatus(w http.ResponseWriter, name, id string, offset int64, status int) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Range", rangeHeader(offset))
	writeEmpty(w, status)
}

func (g *Registry) loadSession(ctx context.Context, name, id string) (*session, error) {
	if !validUploadID(id) {
		return nil, errUploadUnknown(id)
	}
	b, err := g.locks.Get(ctx, id)
	if errors.Is(err, locking.ErrNotFound) {
		return nil, errUploadUnknown(id)
	}
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("upload %s: corrupt session record: %w", id, err)
	}
	if s.Repo != name {
		// An upload URL only works in the repository it was started in.
		return nil, errUploadUnknown(id)
	}
	return &s, nil
}

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository
// mount, a monolithic upload (?digest=), or a new session.
func (g *Registry) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := parseDigestParam(m, "mount")
		if err != nil {
			return err
		}
		mounted, err := g.mount(ctx, rt.name, q.Get("from"), d)
		if err != nil {
			return err
		}
		if mounted {
			w.Header().Set("Location", blobLocation(rt.name, d))
			w.Header().Set("Docker-Content-Digest", d.String())
			writeEmpty(w, http.StatusCreated)
			return nil
		}
		// Not mountable: the spec's answer is a fresh upload session.
	} else if ds := q.Get("digest"); ds != "" {
		d, err := parseDigestParam(ds, "digest")
		if err != nil {
			return err
		}
		return g.monolithicUpload(w, r, rt.name, d)
	}
	alg := ""
	if a := q.Get("digest-algorithm"); a != "" {
		if _, ok := algorithms[a]; !ok {
			return newError(http.StatusBadRequest, codeDigestInvalid, "digest-algorithm %q is not supported (sha256, sha512 are)", a)
		}
		alg = a
	}
	id := newUploadID()
	rec, err := json.Marshal(session{Repo: rt.name, Alg: alg, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := g.locks.Create(ctx, id, rec, g.cfg.UploadTTL); err != nil {
		return err
	}
	writeUploadStatus(w, rt.name, id, 0, http.StatusAccepted)
	return nil
}

// mount links d into name when repository from serves it. It reports false
// (fall back to an upload) when the blob is not there to mount; anonymous
// mounts (no from) are never honoured, so a repository cannot obtain a blob
// it was not shown.
func (g *Registry) mount(ctx context.Context, name, from string, d Digest) (bool, error) {
	if from == "" || !validName(from) {
		return false, nil
	}
	if err := g.pinLink(ctx, from, d, true); err != nil {
		if hasCode(err, codeBlobUnknown) {
			return false, nil
		}
		return false, err
	}
	// The new link too: GC may be removing an old link of d from name.
	if err := g.pinScope(ctx, linkKey(name, d), d, true); err != nil {
		if hasCode(err, codeBlobUnknown) {
			return false, errBeingCollected(d)
		}
		return false, err
	}
	if _, err := g.servable(ctx, from, d); err != nil {
		if hasCode(err, codeBlobUnknown) {
			return false, nil
		}
		return false, err
	}
	if err := g.link(ctx, name, d); err != nil {
		return false, err
	}
	return true, nil
}

// monolithicUpload stores a whole blob sent with POST ?digest=.
func (g *Registry) monolithicUpload(w http.ResponseWriter, r *http.Request, name string, d Digest) error {
	ctx := r.Context()
	h, _ := newHash(d.Alg)
	id := newUploadID()
	key := dataKey(id)
	body := &clientBody{r: r.Body}
	info, err := g.store.Put(ctx, key, io.TeeReader(body, h), storage.PutOptions{Size: r.ContentLength})
	if err != nil {
		// The write may have been applied with its answer lost; the key is
		// this request's own, so removing it cannot hurt anyone.
		g.deleteQuietly(ctx, key)
		if body.err != nil {
			return newError(http.StatusBadRequest, codeBlobUploadInvalid, "reading the blob failed after %d bytes: %v", body.n, body.err)
		}
		return err
	}
	if got := digestOf(h, d.Alg); got != d {
		g.deleteQuietly(ctx, key)
		return errDigestMismatch(d, got)
	}
	// A failed commit leaves the data object alone unless no record names
	// it: the record write may have been applied with its answer lost.
	// commitBlob itself removes the data when another upload won; in any
	// other doubt GC's orphan sweep does, once no record names it.
	if err := g.commitBlob(ctx, name, d, key, info.Size); err != nil {
		var notWritten *recordNotWrittenError
		if errors.As(err, &notWritten) {
			g.deleteQuietly(ctx, key)
		}
		return err
	}
	w.Header().Set("Location", blobLocation(name, d))
	w.Header().Set("Docker-Content-Digest", d.String())
	writeEmpty(w, http.StatusCreated)
	return nil
}

func errDigestMismatch(want, got Digest) *apiError {
	return newError(http.StatusBadRequest, codeDigestInvalid, "the uploaded content has digest %s, not %s", got, want).
		withDetail(map[string]string{"digest": want.String()})
}

// commitBlob makes dataKey the bytes of d and links d into name. It is the
// O(1) commit: one create-only record write, however large the blob.
// The pins come first so a concurrent GC cannot claim d, the data key or
// the new link between our record check and the link.
//
// It is idempotent (docs/architecture.md, "Retries"): a record write that
// the store applied but whose answer was lost comes back from the retry as
// ErrExists, and reading the record back shows it names our data key, so
// the commit succeeds. Only a record naming another data key means another
// upload of d won; ours is then deleted.
func (g *Registry) commitBlob(ctx context.Context, name string, d Digest, key string, size int64) error {
	if err := g.pinForCommit(ctx, d); err != nil {
		return err
	}
	// The data key is pinned too: GC's orphan sweep claims data keys, and
	// this pin either lands before its claim (it then keeps the object) or
	// fails, in which case nothing is acknowledged.
	if err := g.pinKey(ctx, key); err != nil {
		return err
	}
	if err := g.pinScope(ctx, linkKey(name, d), d, true); err != nil {
		if hasCode(err, codeBlobUnknown) {
			return errBeingCollected(d)
		}
		return err
	}
	rec, _ := json.Marshal(blobRecord{Data: key, Size: size})
	_, err := g.store.Put(ctx, blobRecordKey(d), bytesReader(string(rec)), storage.PutOptions{CreateOnly: true, Size: int64(len(rec))})
	if err != nil {
		// Whatever the error, the record now tells whose data serves d.
		existing, rerr := g.readRecord(ctx, d)
		switch {
		case rerr == nil && existing.Data == key:
			// Ours: the write was applied and its answer lost.
		case rerr == nil:
			// Another upload of d committed first; theirs serves, ours goes.
			g.deleteQuietly(ctx, key)
		case errors.Is(rerr, storage.ErrNotFound) && !errors.Is(err, storage.ErrExists):
			return &recordNotWrittenError{err: err}
		default:
			// Unknown whose record it is: keep our data (GC removes it if
			// it is nobody's) and let the client retry.
			return fmt.Errorf("blob %s: writing the record failed (%w) and reading it back failed: %w", d, err, rerr)
		}
	}
	return g.link(ctx, name, d)
}

// recordNotWrittenError: the blob record write failed and no record exists,
// so nothing points at the upload's data. A monolithic upload deletes its
// data then; a session keeps it for the retried PUT.
type recordNotWrittenError struct{ err error }

func (e *recordNotWrittenError) Error() string { return "writing the blob record: " + e.err.Error() }
func (e *recordNotWrittenError) Unwrap() error { return e.err }

// errBeingCollected is the retryable answer to a write of d that races GC
// deleting an older copy of it.
func errBeingCollected(d Digest) *apiError {
	return newError(http.StatusServiceUnavailable, codeUnavailable, "blob %s is being garbage-collected; retry shortly", d).
		withHeader("Retry-After", strconv.Itoa(retryAfterSeconds))
}

// pinForCommit pins d for a write; while GC is removing an older copy of d
// the write is refused with a retryable 503.
func (g *Registry) pinForCommit(ctx context.Context, d Digest) error {
	err := g.pin(ctx, d, true)
	if hasCode(err, codeBlobUnknown) {
		return errBeingCollected(d)
	}
	return err
}

func (g *Registry) deleteQuietly(ctx context.Context, key string) {
	if err := g.store.Delete(context.WithoutCancel(ctx), key); err != nil {
		g.logger.Warn("cleanup failed; GC will remove it", "key", key, "err", err)
	}
}

// writer is one request's hold on an upload: the lease, the session as of
// the lease, and the resumed multipart writer.
type writer struct {
	g    *Registry
	id   string
	name string
	// mu guards lease, which the renewal goroutine replaces while the
	// request saves the session with it.
	mu    sync.Mutex
	lease locking.Lease
	s     *session
	mp    storage.Multipart
	// stop ends the lease renewal; cancel aborts the write if renewal
	// fails, so a writer that lost its lease stops writing.
	stop func()
}

// acquireWriter takes the upload's lease, waiting up to lease_wait for a
// request that holds it (or a crashed replica's lease to expire), then
// reloads the session so it sees the last saved state.
func (g *Registry) acquireWriter(ctx context.Context, name, id string) (*writer, context.Context, error) {
	if _, err := g.loadSession(ctx, name, id); err != nil {
		return nil, nil, err
	}
	key := locking.SessionLeaseKey(id)
	deadline := time.Now().Add(g.cfg.LeaseWait)
	var lease locking.Lease
	for {
		var err error
		lease, err = g.locks.Acquire(ctx, key, g.cfg.LeaseTTL)
		if err == nil {
			break
		}
		if !errors.Is(err, locking.ErrHeld) {
			return nil, nil, err
		}
		if time.Now().After(deadline) {
			return nil, nil, newError(http.StatusConflict, codeBlobUploadInvalid, "another request is writing upload %s; retry when it has finished", id)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	wr := &writer{g: g, id: id, name: name, lease: lease}
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(g.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l, err := g.locks.Renew(wctx, wr.currentLease(), g.cfg.LeaseTTL)
				if err != nil {
					cancel(fmt.Errorf("upload lease lost: %w", err))
					return
				}
				wr.mu.Lock()
				wr.lease = l
				wr.mu.Unlock()
			}
		}
	}()
	wr.stop = func() {
		close(done)
		<-renewed
		cancel(nil)
	}
	s, err := g.loadSession(wctx, name, id)
	if err != nil {
		wr.release(ctx)
		return nil, nil, err
	}
	wr.s = s
	return wr, wctx, nil
}

func (wr *writer) currentLease() locking.Lease {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return wr.lease
}

func (wr *writer) release(ctx context.Context) {
	wr.stop()
	if err := wr.g.locks.Release(context.WithoutCancel(ctx), wr.currentLease()); err != nil && !errors.Is(err, locking.ErrLost) {
		wr.g.logger.Warn("releasing upload lease", "upload", wr.id, "err", err)
	}
}

func (wr *writer) multipart(ctx context.Context) (storage.Multipart, error) {
	if wr.mp != nil {
		return wr.mp, nil
	}
	var err error
	if len(wr.s.Handle) == 0 {
		wr.mp, err = wr.g.store.NewMultipart(ctx, dataKey(wr.id))
	} else {
		wr.mp, err = wr.g.store.ResumeMultipart(ctx, wr.s.Handle)
		if errors.Is(err, storage.ErrHandleExpired) || errors.Is(err, storage.ErrNotFound) {
			return nil, newError(http.StatusNotFound, codeBlobUploadUnknown, "upload %s expired in the storage backend; start a new upload", wr.id)
		}
	}
	return wr.mp, err
}

// errOutOfOrder is the 416 the spec requires for a chunk that does not start
// where the upload stands, carrying the current Range so the client can
// resume.
func (wr *writer) errOutOfOrder(start int64) *apiError {
	return newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
		"chunk starts at byte %d but the upload has %d bytes; resume from %d", start, wr.s.Offset, wr.s.Offset).
		withHeader("Range", rangeHeader(wr.s.Offset)).
		withHeader("Location", uploadLocation(wr.name, wr.id)).
		withHeader("Docker-Upload-UUID", wr.id)
}

// appendChunk streams body into the upload and saves the new state. alg is
// the algorithm to hash with if none was chosen yet. On any failure nothing
// is saved: the session stays at its old offset and the client may resend.
func (wr *writer) appendChunk(ctx context.Context, r *http.Request, alg string) error {
	s := wr.s
	expect := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "%v", err).
				withHeader("Range", rangeHeader(s.Offset))
		}
		if start != s.Offset {
			return wr.errOutOfOrder(start)
		}
		expect = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != expect {
			return newError(http.StatusBadRequest, codeSizeInvalid, "Content-Range %s covers %d bytes but Content-Length is %d", cr, expect, r.ContentLength)
		}
	}
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if s.Alg == "" {
		s.Alg = alg
	}
	h, err := restoreHash(s.Alg, s.Hash)
	if err != nil {
		return err
	}
	mp, err := wr.multipart(ctx)
	if err != nil {
		return err
	}
	body := &clientBody{r: r.Body}
	n, err := mp.Append(ctx, io.TeeReader(body, h))
	if err != nil {
		wr.mp = nil // discard: resume from the saved handle next time
		if body.err != nil {
			return newError(http.StatusBadRequest, codeBlobUploadInvalid, "reading the chunk failed after %d bytes: %v; resend it from byte %d", body.n, body.err, wr.s.Offset).
				withHeader("Range", rangeHeader(wr.s.Offset))
		}
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return fmt.Errorf("%w (%v)", err, cause)
		}
		return err
	}
	if expect >= 0 && n != expect {
		wr.mp = nil
		return newError(http.StatusBadRequest, codeSizeInvalid, "chunk has %d bytes but Content-Range announced %d", n, expect)
	}
	handle, err := mp.Handle()
	if err != nil {
		return err
	}
	state, err := marshalHash(h)
	if err != nil {
		return err
	}
	next := *s
	next.Offset += n
	next.Handle = handle
	next.Hash = state
	if err := wr.save(ctx, &next); err != nil {
		wr.mp = nil
		return err
	}
	wr.s = &next
	return nil
}

// hasher returns the hash state after all accepted bytes.
func (wr *writer) hasher() (hash.Hash, error) {
	alg := wr.s.Alg
	if alg == "" {
		alg = "sha256"
	}
	return restoreHash(alg, wr.s.Hash)
}

func (wr *writer) save(ctx context.Context, s *session) error {
	rec, err := json.Marshal(s)
	if err != nil {
		return err
	}
	err = wr.g.locks.Update(ctx, wr.currentLease(), wr.id, rec, wr.g.cfg.UploadTTL)
	switch {
	case errors.Is(err, locking.ErrLost):
		return newError(http.StatusConflict, codeBlobUploadInvalid, "upload %s was taken over by another request; check its status and resume", wr.id)
	case errors.Is(err, locking.ErrNotFound):
		return errUploadUnknown(wr.id)
	}
	return err
}

func (g *Registry) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	wr, ctx, err := g.acquireWriter(r.Context(), rt.name, rt.arg)
	if err != nil {
		return err
	}
	defer wr.release(r.Context())
	if err := wr.appendChunk(ctx, r, "sha256"); err != nil {
		return err
	}
	writeUploadStatus(w, rt.name, rt.arg, wr.s.Offset, http.StatusAccepted)
	return nil
}

func (g *Registry) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return newError(http.StatusBadRequest, codeDigestInvalid, "the final PUT of an upload needs ?digest=")
	}
	d, err := parseDigestParam(ds, "digest")
	if err != nil {
		return err
	}
	wr, ctx, err := g.acquireWriter(r.Context(), rt.name, rt.arg)
	if err != nil {
		return err
	}
	defer wr.release(r.Context())
	switch {
	case wr.s.Committed != "":
		// A retry of a PUT that committed the bytes and then failed: the
		// chunk it carries, if any, is already in.
	case wr.holdsWholeBlob(d):
		// A retry of a PUT whose final chunk was saved before a later step
		// failed: appending it again would corrupt the blob.
	default:
		if err := wr.appendChunk(ctx, r, d.Alg); err != nil {
			return err
		}
	}
	if err := wr.finish(ctx, d); err != nil {
		return err
	}
	w.Header().Set("Location", blobLocation(rt.name, d))
	w.Header().Set("Docker-Content-Digest", d.String())
	writeEmpty(w, http.StatusCreated)
	return nil
}

// holdsWholeBlob reports whether the bytes accepted so far already hash to
// d, so that a body on the final PUT can only be a resend of the last chunk
// (anything else would need a SHA-256 collision).
func (wr *writer) holdsWholeBlob(d Digest) bool {
	if wr.s.Offset == 0 || wr.s.Alg != d.Alg {
		return false
	}
	h, err := wr.hasher()
	return err == nil && digestOf(h, d.Alg) == d
}

// finish verifies the digest from the saved hash state (no re-read, except
// for a client that hashed with another algorithm than the one announced),
// commits the multipart write and the blob record, and ends the session.
// Every step can be repeated by a retried PUT: the session remembers a
// commit, and a commit whose answer was lost is recognised by the data
// object being there with the session's size.
func (wr *writer) finish(ctx context.Context, d Digest) error {
	g := wr.g
	key := dataKey(wr.id)
	if wr.s.Committed != "" {
		if wr.s.Committed != d.String() {
			got, _ := ParseDigest(wr.s.Committed)
			return errDigestMismatch(d, got)
		}
		if err := g.commitBlob(ctx, wr.name, d, key, wr.s.Offset); err != nil {
			return err
		}
		g.endSession(ctx, wr.id)
		return nil
	}
	verified := false
	if wr.s.Alg == d.Alg || wr.s.Alg == "" && d.Alg == "sha256" {
		h, err := wr.hasher()
		if err != nil {
			return err
		}
		if got := digestOf(h, d.Alg); got != d {
			return errDigestMismatch(d, got)
		}
		verified = true
	}
	// Pin before Commit: if GC is deleting this digest or data key, the
	// upload stays resumable and the client retries the PUT.
	if err := g.pinForCommit(ctx, d); err != nil {
		return err
	}
	if err := g.pinKey(ctx, key); err != nil {
		return err
	}
	info, err := wr.commitData(ctx)
	if err != nil {
		return err
	}
	if info.Size != wr.s.Offset {
		g.deleteQuietly(ctx, key)
		return fmt.Errorf("upload %s: committed %d bytes, session says %d", wr.id, info.Size, wr.s.Offset)
	}
	if !verified {
		got, err := g.hashObject(ctx, key, d.Alg)
		if err != nil {
			return err
		}
		if got != d {
			g.deleteQuietly(ctx, key)
			g.endSession(ctx, wr.id)
			return errDigestMismatch(d, got)
		}
	}
	wr.markCommitted(ctx, d)
	if err := g.commitBlob(ctx, wr.name, d, key, info.Size); err != nil {
		return err
	}
	g.endSession(ctx, wr.id)
	return nil
}

// commitData commits the multipart write. When the write is gone (resume
// or completion finds no upload), an earlier attempt may have committed it
// with its answer lost: the data object then exists with the session's
// size, because nothing else ever writes this upload's data key.
func (wr *writer) commitData(ctx context.Context) (storage.Info, error) {
	mp, err := wr.multipart(ctx)
	if err == nil {
		var info storage.Info
		info, err = mp.Commit(ctx)
		if err == nil {
			return info, nil
		}
		wr.mp = nil
	}
	if !hasCode(err, codeBlobUploadUnknown) && !errors.Is(err, storage.ErrHandleExpired) && !errors.Is(err, storage.ErrNotFound) {
		return storage.Info{}, err
	}
	info, serr := wr.g.store.Stat(ctx, dataKey(wr.id))
	if serr != nil || info.Size != wr.s.Offset {
		if serr != nil && !errors.Is(serr, storage.ErrNotFound) {
			return storage.Info{}, serr
		}
		return storage.Info{}, err
	}
	wr.g.logger.Info("upload was committed by an earlier attempt whose answer was lost", "upload", wr.id, "size", info.Size)
	return info, nil
}

// markCommitted saves that the data is committed, so a retried PUT goes
// straight to the record. If saving fails the retry still works (commitData
// recognises the committed object), so the failure is only logged.
func (wr *writer) markCommitted(ctx context.Context, d Digest) {
	next := *wr.s
	next.Committed = d.String()
	if err := wr.save(ctx, &next); err != nil {
		wr.g.logger.Warn("saving the committed state of an upload", "upload", wr.id, "err", err)
		return
	}
	wr.s = &next
}

// hashObject re-reads an object; only used when a client declares a digest
// algorithm at the end of an upload that was hashed with another one.
func (g *Registry) hashObject(ctx context.Context, key, alg string) (Digest, error) {
	h, err := newHash(alg)
	if err != nil {
		return Digest{}, err
	}
	rc, err := g.store.Reader(ctx, key, 0, -1)
	if err != nil {
		return Digest{}, err
	}
	defer rc.Close()
	if _, err := io.Copy(h, rc); err != nil {
		return Digest{}, err
	}
	return digestOf(h, alg), nil
}

func (g *Registry) endSession(ctx context.Context, id string) {
	if err := g.locks.Delete(context.WithoutCancel(ctx), id); err != nil && !errors.Is(err, locking.ErrNotFound) {
		g.logger.Warn("deleting finished upload session; it will expire", "upload", id, "err", err)
	}
}

func (g *Registry) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	s, err := g.loadSession(r.Context(), rt.name, rt.arg)
	if err != nil {
		return err
	}
	writeUploadStatus(w, rt.name, rt.arg, s.Offset, http.StatusNoContent)
	return nil
}

func (g *Registry) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	wr, ctx, err := g.acquireWriter(r.Context(), rt.name, rt.arg)
	if err != nil {
		return err
	}
	defer wr.release(r.Context())
	if len(wr.s.Handle) > 0 {
		mp, err := wr.multipart(ctx)
		if err == nil {
			err = mp.Abort(ctx)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				return err
			}
		}
	}
	if err := g.locks.Delete(ctx, rt.arg); err != nil && !errors.Is(err, locking.ErrNotFound) {
		return err
	}
	writeEmpty(w, http.StatusNoContent)
	return nil
}

func bytesReader(s string) io.Reader { return strings.NewReader(s) }

// clientBody remembers why reading a request body failed, so that a client
// that sends less than it announced gets a 400, not a storage 5xx.
type clientBody struct {
	r   io.Reader
	n   int64
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
