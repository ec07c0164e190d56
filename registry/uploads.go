package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
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
	return newError(codeBlobUploadUnknown, "upload %q is not known (finished, cancelled or expired)", id)
}

// newUploadID returns 128 random bits in hex: unguessable, so an upload URL
// is a capability, and safe in any storage key.
// emptySessionTTL bounds the life of an upload session that has received
// no bytes: clients send their first chunk right after the POST.
const emptySessionTTL = 10 * time.Minute

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

func blobLocation(name string, d digest.Digest) string { return "/v2/" + name + "/blobs/" + d.String() }

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
		mounted, err := g.mount(ctx, r, rt.name, q.Get("from"), d)
		if err != nil {
			return err
		}
		if mounted {
			g.emitBlob(r, EventMount, rt.name, q.Get("from"), d, 0)
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
		if !content.SupportedAlgorithm(digest.Algorithm(a)) {
			return newError(codeDigestInvalid, "digest-algorithm %q is not supported (sha256, sha512 are)", a)
		}
		alg = a
	}
	id := newUploadID()
	rec, err := json.Marshal(session{Repo: rt.name, Alg: alg, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	// A session that never receives a byte costs state for as long as it
	// lives, so it starts short-lived; the first chunk saves it with the
	// full upload_ttl. Its upload slot lives as long (save renews it).
	ttl := min(g.cfg.UploadTTL, emptySessionTTL)
	if err := g.acquireUploadSlot(ctx, rt.name, id, ttl); err != nil {
		return err
	}
	if err := g.locks.Create(ctx, id, rec, ttl); err != nil {
		g.releaseUploadSlot(ctx, rt.name, id)
		return err
	}
	writeUploadStatus(w, rt.name, id, 0, http.StatusAccepted)
	return nil
}

// mount links d into name when repository from serves it. It reports false
// (fall back to an upload) when the blob is not there to mount; anonymous
// mounts (no from) are never honoured, so a repository cannot obtain a blob
// it was not shown. The caller was allowed to push to name; it must also
// be allowed to pull from, or it falls back the same way, so a denied
// source looks exactly like one without the blob.
func (g *Registry) mount(ctx context.Context, r *http.Request, name, from string, d digest.Digest) (bool, error) {
	if from == "" || !validName(from) {
		return false, nil
	}
	if g.auth.Authorize(ctx, r, Access{Repository: from, Action: ActionPull}) != nil {
		return false, nil
	}
	src, err := g.content.Repository(from)
	if err != nil {
		return false, err
	}
	dst, err := g.content.Repository(name)
	if err != nil {
		return false, err
	}
	return dst.Mount(ctx, src, d)
}

// monolithicUpload stores a whole blob sent with POST ?digest=.
func (g *Registry) monolithicUpload(w http.ResponseWriter, r *http.Request, name string, d digest.Digest) error {
	ctx := r.Context()
	repo, err := g.content.Repository(name)
	if err != nil {
		return err
	}
	h, err := newHash(d.Algorithm())
	if err != nil {
		return err
	}
	id := newUploadID()
	body, err := g.uploadBody(r)
	if err != nil {
		return err
	}
	info, err := g.content.PutData(ctx, id, io.TeeReader(body, h), r.ContentLength)
	if err != nil {
		// The write may have been applied with its answer lost; the key is
		// this request's own, so removing it cannot hurt anyone.
		g.content.DeleteDataQuietly(ctx, id)
		if errors.Is(body.err, errChunkTooLarge) {
			return errTooLarge(g.cfg.MaxChunkSize)
		}
		if body.err != nil {
			return newError(codeBlobUploadInvalid, "reading the blob failed after %d bytes: %v", body.n, body.err)
		}
		return err
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		g.content.DeleteDataQuietly(ctx, id)
		return errDigestMismatch(d, got)
	}
	// A failed commit leaves the data object alone unless no record names
	// it: the record write may have been applied with its answer lost.
	// CommitBlob itself removes the data when another upload won; in any
	// other doubt GC's orphan sweep does, once no record names it.
	if err := repo.CommitBlob(ctx, d, id, info.Size); err != nil {
		var notWritten *content.RecordNotWrittenError
		if errors.As(err, &notWritten) {
			g.content.DeleteDataQuietly(ctx, id)
		}
		return err
	}
	g.emitBlob(r, EventPush, name, "", d, info.Size)
	w.Header().Set("Location", blobLocation(name, d))
	w.Header().Set("Docker-Content-Digest", d.String())
	writeEmpty(w, http.StatusCreated)
	return nil
}

// errChunkRange is the 416 of a chunk whose Content-Range does not fit the
// upload: the spec's status for an out-of-order chunk ("Pushing a blob in
// chunks"), with the code BLOB_UPLOAD_INVALID (RANGE_INVALID is for blob
// reads) and the Range the upload stands at.
func errChunkRange(offset int64, format string, args ...any) *apiError {
	return newError(codeBlobUploadInvalid, format, args...).
		withStatus(http.StatusRequestedRangeNotSatisfiable).
		withHeader("Range", rangeHeader(offset))
}

func errDigestMismatch(want, got digest.Digest) *apiError {
	return newError(codeDigestInvalid, "the uploaded content has digest %s, not %s", got, want).
		withDetail(map[string]string{"digest": want.String()})
}

func (g *Registry) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	wr, ctx, err := g.acquireWriter(r.Context(), rt.name, rt.arg)
	if err != nil {
		return err
	}
	defer wr.release(r.Context())
	if err := wr.appendChunk(ctx, r, digest.SHA256); err != nil {
		return err
	}
	writeUploadStatus(w, rt.name, rt.arg, wr.s.Offset, http.StatusAccepted)
	return nil
}

func (g *Registry) putUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return newError(codeDigestInvalid, "the final PUT of an upload needs ?digest=")
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
		if err := wr.appendChunk(ctx, r, d.Algorithm()); err != nil {
			return err
		}
	}
	if err := wr.finish(ctx, d); err != nil {
		return err
	}
	g.emitBlob(r, EventPush, rt.name, "", d, wr.s.Offset)
	w.Header().Set("Location", blobLocation(rt.name, d))
	w.Header().Set("Docker-Content-Digest", d.String())
	writeEmpty(w, http.StatusCreated)
	return nil
}

// holdsWholeBlob reports whether the bytes accepted so far already hash to
// d, so that a body on the final PUT can only be a resend of the last chunk
// (anything else would need a SHA-256 collision).
func (wr *writer) holdsWholeBlob(d digest.Digest) bool {
	if wr.s.Offset == 0 || wr.s.Alg != string(d.Algorithm()) {
		return false
	}
	h, err := wr.hasher()
	return err == nil && digest.NewDigest(d.Algorithm(), h) == d
}

func (g *Registry) endSession(ctx context.Context, repo, id string) {
	g.releaseUploadSlot(ctx, repo, id)
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
	g.releaseUploadSlot(ctx, rt.name, rt.arg)
	writeEmpty(w, http.StatusNoContent)
	return nil
}

// clientBody remembers why reading a request body failed, so that a client
// that sends less than it announced gets a 400, not a storage 5xx. With max
// it also refuses a body longer than registry.max_chunk_size.
type clientBody struct {
	r   io.Reader
	n   int64
	max int64 // 0: unbounded
	err error
}

// errChunkTooLarge ends a body that outgrew registry.max_chunk_size.
var errChunkTooLarge = errors.New("request body exceeds registry.max_chunk_size")

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.max > 0 && b.n > b.max {
		b.err = errChunkTooLarge
		return n, b.err
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// uploadBody is r's body as an upload chunk (or monolithic blob), refused
// up front when its Content-Length is over registry.max_chunk_size.
func (g *Registry) uploadBody(r *http.Request) (*clientBody, error) {
	limit := int64(g.cfg.MaxChunkSize)
	if limit > 0 && r.ContentLength > limit {
		return nil, errTooLarge(g.cfg.MaxChunkSize)
	}
	return &clientBody{r: r.Body, max: limit}, nil
}

func errTooLarge(limit storage.Size) *apiError {
	return newError(codeSizeInvalid, "upload request bodies are limited to %s (registry.max_chunk_size); send the blob in smaller chunks", limit).
		withStatus(http.StatusRequestEntityTooLarge)
}
