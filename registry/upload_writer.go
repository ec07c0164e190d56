package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

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
			// 409: the upload exists but is busy; 400 would tell the
			// client its request is wrong.
			return nil, nil, newError(codeBlobUploadInvalid, "another request is writing upload %s; retry when it has finished", id).withStatus(http.StatusConflict)
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
		wr.mp, err = wr.g.content.NewUpload(ctx, wr.id)
	} else {
		wr.mp, err = wr.g.content.ResumeUpload(ctx, wr.s.Handle)
		if errors.Is(err, storage.ErrHandleExpired) || errors.Is(err, storage.ErrNotFound) {
			return nil, newError(codeBlobUploadUnknown, "upload %s expired in the storage backend; start a new upload", wr.id)
		}
	}
	return wr.mp, err
}

// errOutOfOrder is the 416 the spec requires for a chunk that does not start
// where the upload stands ("Pushing a blob in chunks"), carrying the current
// Range so the client can resume.
func (wr *writer) errOutOfOrder(start int64) *apiError {
	return errChunkRange(wr.s.Offset,
		"chunk starts at byte %d but the upload has %d bytes; resume from %d", start, wr.s.Offset, wr.s.Offset).
		withHeader("Location", uploadLocation(wr.name, wr.id)).
		withHeader("Docker-Upload-UUID", wr.id)
}

// appendChunk streams body into the upload and saves the new state. alg is
// the algorithm to hash with if none was chosen yet. On any failure nothing
// is saved: the session stays at its old offset and the client may resend.
func (wr *writer) appendChunk(ctx context.Context, r *http.Request, alg digest.Algorithm) error {
	s := wr.s
	expect := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return errChunkRange(s.Offset, "%v", err)
		}
		if start != s.Offset {
			return wr.errOutOfOrder(start)
		}
		expect = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != expect {
			return newError(codeSizeInvalid, "Content-Range %s covers %d bytes but Content-Length is %d", cr, expect, r.ContentLength)
		}
	}
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if s.Alg == "" {
		s.Alg = string(alg)
	}
	h, err := restoreHash(digest.Algorithm(s.Alg), s.Hash)
	if err != nil {
		return err
	}
	mp, err := wr.multipart(ctx)
	if err != nil {
		return err
	}
	body, err := wr.g.uploadBody(r)
	if err != nil {
		return err
	}
	n, err := mp.Append(ctx, io.TeeReader(body, h))
	if err != nil {
		wr.mp = nil // discard: resume from the saved handle next time
		if errors.Is(body.err, errChunkTooLarge) {
			return errTooLarge(wr.g.cfg.MaxChunkSize)
		}
		if errors.Is(body.err, errBodyTooSlow) {
			return errSlowBody(body.err, wr.s.Offset)
		}
		if body.err != nil {
			return newError(codeBlobUploadInvalid, "reading the chunk failed after %d bytes: %v; resend it from byte %d", body.n, body.err, wr.s.Offset).
				withHeader("Range", rangeHeader(wr.s.Offset))
		}
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return fmt.Errorf("%w (%v)", err, cause)
		}
		return err
	}
	if expect >= 0 && n != expect {
		wr.mp = nil
		return newError(codeSizeInvalid, "chunk has %d bytes but Content-Range announced %d", n, expect)
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
	alg := digest.Algorithm(wr.s.Alg)
	if alg == "" {
		alg = digest.SHA256
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
		// 409 as for a busy lease: the request is right, the timing not.
		return newError(codeBlobUploadInvalid, "upload %s was taken over by another request; check its status and resume", wr.id).withStatus(http.StatusConflict)
	case errors.Is(err, locking.ErrNotFound):
		return errUploadUnknown(wr.id)
	case err == nil:
		wr.g.renewUploadSlot(ctx, s.Repo, wr.id)
	}
	return err
}

// finish verifies the digest from the saved hash state (no re-read, except
// for a client that hashed with another algorithm than the one announced),
// commits the multipart write and the blob record, and ends the session.
// Every step can be repeated by a retried PUT: the session remembers a
// commit, and a commit whose answer was lost is recognised by the data
// object being there with the session's size.
func (wr *writer) finish(ctx context.Context, d digest.Digest) error {
	g := wr.g
	repo, err := g.content.Repository(wr.name)
	if err != nil {
		return err
	}
	if wr.s.Committed != "" {
		if wr.s.Committed != d.String() {
			return errDigestMismatch(d, digest.Digest(wr.s.Committed))
		}
		if err := repo.CommitBlob(ctx, d, wr.id, wr.s.Offset); err != nil {
			return err
		}
		g.endSession(ctx, wr.s.Repo, wr.id)
		return nil
	}
	verified, err := wr.verify(d)
	if err != nil {
		return err
	}
	// Pin before Commit: if GC is deleting this digest or data key, the
	// upload stays resumable and the client retries the PUT.
	if err := g.content.PinDigest(ctx, d); err != nil {
		return err
	}
	if err := g.content.PinData(ctx, wr.id); err != nil {
		return err
	}
	info, err := wr.commitData(ctx)
	if err != nil {
		return err
	}
	if info.Size != wr.s.Offset {
		g.content.DeleteDataQuietly(ctx, wr.id)
		return fmt.Errorf("upload %s: committed %d bytes, session says %d", wr.id, info.Size, wr.s.Offset)
	}
	if !verified {
		got, err := g.content.HashData(ctx, wr.id, d.Algorithm())
		if err != nil {
			return err
		}
		if got != d {
			g.content.DeleteDataQuietly(ctx, wr.id)
			g.endSession(ctx, wr.s.Repo, wr.id)
			return errDigestMismatch(d, got)
		}
	}
	wr.markCommitted(ctx, d)
	if err := repo.CommitBlob(ctx, d, wr.id, info.Size); err != nil {
		return err
	}
	g.endSession(ctx, wr.s.Repo, wr.id)
	return nil
}

// verify checks d against the saved hash state when the upload was hashed
// with d's algorithm; verified is false when it was not (the data is then
// re-read once after the commit).
func (wr *writer) verify(d digest.Digest) (verified bool, err error) {
	alg := d.Algorithm()
	if wr.s.Alg != string(alg) && (wr.s.Alg != "" || alg != digest.SHA256) {
		return false, nil
	}
	h, err := wr.hasher()
	if err != nil {
		return false, err
	}
	if got := digest.NewDigest(alg, h); got != d {
		return false, errDigestMismatch(d, got)
	}
	return true, nil
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
	info, serr := wr.g.content.StatData(ctx, wr.id)
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
func (wr *writer) markCommitted(ctx context.Context, d digest.Digest) {
	next := *wr.s
	next.Committed = d.String()
	if err := wr.save(ctx, &next); err != nil {
		wr.g.logger.Warn("saving the committed state of an upload", "upload", wr.id, "err", err)
		return
	}
	wr.s = &next
}
