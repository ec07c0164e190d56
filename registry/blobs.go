package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
)

func errBlobUnknown(d digest.Digest) *apiError {
	return newError(codeBlobUnknown, "blob %s is not known to this repository", d).
		withDetail(map[string]string{"digest": d.String()})
}

// blobErr gives a content error about blob d its answer.
func blobErr(err error, d digest.Digest) error {
	if errors.Is(err, content.ErrBlobUnknown) {
		return errBlobUnknown(d).withCause(err)
	}
	return err
}

func (g *Registry) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	d, err := parseDigestParam(rt.arg, "blob digest")
	if err != nil {
		return err
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	if g.opensEarly(r) {
		blob, rc, err := repo.OpenServedBlob(ctx, d)
		switch {
		case err == nil:
			defer rc.Close()
			setBlobHeaders(w, d)
			g.sendBlob(w, r, d, rc, byteRange{start: 0, length: blob.Size}, false, blob.Size)
			return nil
		case !rt.mirrored || !errors.Is(err, content.ErrBlobUnknown):
			return blobErr(err, d)
		}
		// A miss in a mirrored repository: the mirror path fetches it.
	}
	blob, served, err := g.serveBlobOrFetch(w, r, rt, repo, d)
	if err != nil || served {
		return blobErr(err, d)
	}
	setBlobHeaders(w, d)
	h := w.Header()
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(blob.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	br, partial, err := parseRange(r.Header.Get("Range"), blob.Size)
	if err != nil {
		return newError(codeRangeInvalid, "%v for a blob of %d bytes", err, blob.Size).
			withHeader("Content-Range", fmt.Sprintf("bytes */%d", blob.Size))
	}
	readLen := br.length
	if !partial {
		// Whole blob: no range on the store request (S3 serves a plain GET
		// faster than a ranged one).
		br, readLen = byteRange{start: 0, length: blob.Size}, -1
	}
	u, err := g.content.SignedURL(ctx, blob)
	switch {
	case err == nil:
		h.Set("Location", u)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return nil
	case !errors.Is(err, storage.ErrUnsupported):
		g.logger.Warn("signing a pull URL failed; serving the blob directly", "digest", d.String(), "err", err)
	}
	rc, err := g.content.Open(ctx, blob, br.start, readLen)
	if err != nil {
		return blobErr(err, d)
	}
	defer rc.Close()
	g.sendBlob(w, r, d, rc, br, partial, blob.Size)
	return nil
}

// opensEarly reports whether a pull takes OpenServedBlob's path, which
// opens the data while it reads the link: a GET of the whole blob from a
// store that never redirects pulls (a redirect needs no data read).
func (g *Registry) opensEarly(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Range") == "" && !g.redirects
}

// setBlobHeaders sets what every answer of a found blob carries.
func setBlobHeaders(w http.ResponseWriter, d digest.Digest) {
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "max-age=31536000")
}

// sendBlob writes the status and copies range br of the blob from rc.
func (g *Registry) sendBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, rc io.Reader, br byteRange, partial bool, size int64) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(br.length, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", br.start, br.start+br.length-1, size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	// Once the status is out, a failure can only cut the body short; the
	// client notices the missing bytes from Content-Length.
	buf := g.copyBufs.Get().(*[]byte)
	defer g.copyBufs.Put(buf)
	// writerOnly hides ResponseWriter's ReadFrom, which would copy in
	// 32 KiB steps; large steps halve the syscalls of a big pull.
	if n, err := io.CopyBuffer(writerOnly{w}, rc, *buf); err != nil && r.Context().Err() == nil {
		g.logger.Warn("blob body cut short", "digest", d.String(), "sent", n, "of", br.length, "err", err)
	}
}

// deleteBlob unlinks the blob from the repository. The bytes stay until GC
// finds no repository or manifest needs them.
func (g *Registry) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigestParam(rt.arg, "blob digest")
	if err != nil {
		return err
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	if err := repo.Unlink(r.Context(), d); err != nil {
		return blobErr(err, d)
	}
	g.emitBlob(r, EventDelete, rt.name, "", d, 0)
	w.Header().Set("Docker-Content-Digest", d.String())
	writeEmpty(w, http.StatusAccepted)
	return nil
}

type writerOnly struct{ io.Writer }

// copyBufSize is the step of a blob download.
const copyBufSize = 256 << 10
