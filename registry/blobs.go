package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

// blobRecord is the small object at blobs/<alg>/<..>/<hex>: it names the
// data object holding the bytes. Writing it create-only is the whole blob
// commit, whatever the blob size (docs/architecture.md).
type blobRecord struct {
	Data string `json:"data"`
	Size int64  `json:"size"`
}

// maxRecordSize bounds what is read back as a record or link.
const maxRecordSize = 4096

func errBlobUnknown(d Digest) *apiError {
	return newError(http.StatusNotFound, codeBlobUnknown, "blob %s is not known to this repository", d).
		withDetail(map[string]string{"digest": d.String()})
}

func (g *Registry) readRecord(ctx context.Context, d Digest) (blobRecord, error) {
	b, err := storage.ReadAll(ctx, g.store, blobRecordKey(d), maxRecordSize)
	if err != nil {
		return blobRecord{}, err
	}
	var rec blobRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Data == "" || rec.Size < 0 {
		return blobRecord{}, fmt.Errorf("blob record %s is corrupt: %q", d, b)
	}
	return rec, nil
}

// servable returns the record of a blob that the repository may serve: the
// repository links it and the blob exists. It reads the store every time:
// no replica may believe a blob exists after another one deleted it.
func (g *Registry) servable(ctx context.Context, name string, d Digest) (blobRecord, error) {
	if _, err := g.store.Stat(ctx, linkKey(name, d)); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return blobRecord{}, errBlobUnknown(d)
		}
		return blobRecord{}, err
	}
	rec, err := g.readRecord(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		return blobRecord{}, errBlobUnknown(d)
	}
	return rec, err
}

// Pins and claims (design.md §6) are scoped to what a deletion removes:
//   - the digest itself ("sha256:..."): only the sweep that deletes the
//     global blob record and its data claims it;
//   - a link or manifest key ("repos/<name>/_links/..."): GC claims the key
//     when it unlinks a blob from, or deletes a manifest in, one repository.
// So unlinking a shared layer from one repository never makes it unknown in
// another. A request pins every scope it relies on.

// pin records that a client is being told d exists (design.md §6). A
// digest that GC is deleting is reported as unknown. When the lock store is
// down, reads go on unpinned (GC cannot run either); writes pass
// required=true and fail with 503.
func (g *Registry) pin(ctx context.Context, d Digest, required bool) error {
	return g.pinScope(ctx, d.String(), d, required)
}

// pinLink pins d both globally and as linked in repository name: what a
// request relies on when it serves, mounts or references a blob there.
func (g *Registry) pinLink(ctx context.Context, name string, d Digest, required bool) error {
	if err := g.pinScope(ctx, linkKey(name, d), d, required); err != nil {
		return err
	}
	return g.pin(ctx, d, required)
}

// pinManifest pins manifest d of repository name (GC claims manifests per
// repository).
func (g *Registry) pinManifest(ctx context.Context, name string, d Digest, required bool) error {
	return g.pinScope(ctx, manifestKey(name, d), d, required)
}

func (g *Registry) pinScope(ctx context.Context, key string, d Digest, required bool) error {
	err := g.locks.Pin(ctx, key)
	g.hookPin(key, err)
	if errors.Is(err, locking.ErrDeleting) {
		g.stats.pinsRefused.Add(1)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, locking.ErrDeleting):
		return errBlobUnknown(d)
	case !required && !errors.Is(err, context.Canceled):
		g.logger.Warn("pin failed; serving the read anyway", "key", key, "err", err)
		return nil
	}
	return err
}

// pinKey pins a storage key (a data object) rather than a digest; GC claims
// orphaned data objects under the same protocol. It is always required.
func (g *Registry) pinKey(ctx context.Context, key string) error {
	err := g.locks.Pin(ctx, key)
	g.hookPin(key, err)
	if errors.Is(err, locking.ErrDeleting) {
		g.stats.pinsRefused.Add(1)
		return newError(http.StatusServiceUnavailable, codeUnavailable, "upload data is being garbage-collected; restart the upload").
			withHeader("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	return err
}

// link lets repository name serve d, and lists the repository.
func (g *Registry) link(ctx context.Context, name string, d Digest) error {
	if _, err := g.store.Put(ctx, linkKey(name, d), bytesReader(d.String()), storage.PutOptions{Size: int64(len(d.String()))}); err != nil {
		return err
	}
	return g.ensureRepo(ctx, name)
}

// ensureRepo adds name to the catalog. A Stat first keeps the common case
// (the repository is listed) to one cheap request.
func (g *Registry) ensureRepo(ctx context.Context, name string) error {
	_, err := g.store.Stat(ctx, catalogKey(name))
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	_, err = g.store.Put(ctx, catalogKey(name), bytesReader(name), storage.PutOptions{Size: int64(len(name))})
	return err
}

func (g *Registry) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	d, err := parseDigestParam(rt.arg, "blob digest")
	if err != nil {
		return err
	}
	if err := g.pinLink(ctx, rt.name, d, false); err != nil {
		return err
	}
	rec, err := g.servable(ctx, rt.name, d)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "max-age=31536000")
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(rec.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	br, partial, err := parseRange(r.Header.Get("Range"), rec.Size)
	if err != nil {
		return newError(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "%v for a blob of %d bytes", err, rec.Size).
			withHeader("Content-Range", fmt.Sprintf("bytes */%d", rec.Size))
	}
	readLen := br.length
	if !partial {
		// Whole blob: no range on the store request (S3 serves a plain GET
		// faster than a ranged one).
		br, readLen = byteRange{start: 0, length: rec.Size}, -1
	}
	if signer, ok := g.store.(storage.URLSigner); ok {
		u, err := signer.SignedURL(ctx, rec.Data, 0) // 0: the driver's configured expiry
		switch {
		case err == nil:
			h.Set("Location", u)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		case !errors.Is(err, storage.ErrUnsupported):
			g.logger.Warn("signing a pull URL failed; serving the blob directly", "digest", d.String(), "err", err)
		}
	}
	rc, err := g.store.Reader(ctx, rec.Data, br.start, readLen)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("blob %s: record points at missing data %s: %w", d, rec.Data, err)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(br.length, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", br.start, br.start+br.length-1, rec.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	// Once the status is out, a failure can only cut the body short; the
	// client notices the missing bytes from Content-Length.
	buf := g.copyBufs.Get().(*[]byte)
	defer g.copyBufs.Put(buf)
	// writerOnly hides ResponseWriter's ReadFrom, which would copy in
	// 32 KiB steps; large steps halve the syscalls of a big pull.
	if n, err := io.CopyBuffer(writerOnly{w}, rc, *buf); err != nil && ctx.Err() == nil {
		g.logger.Warn("blob body cut short", "digest", d.String(), "sent", n, "of", br.length, "err", err)
	}
	return nil
}

// deleteBlob unlinks the blob from the repository. The bytes stay until GC
// finds no repository or manifest needs them.
func (g *Registry) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	d, err := parseDigestParam(rt.arg, "blob digest")
	if err != nil {
		return err
	}
	if _, err := g.store.Stat(ctx, linkKey(rt.name, d)); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errBlobUnknown(d)
		}
		return err
	}
	if err := g.store.Delete(ctx, linkKey(rt.name, d)); err != nil {
		return err
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	writeEmpty(w, http.StatusAccepted)
	return nil
}

type writerOnly struct{ io.Writer }

// copyBufSize is the step of a blob download.
const copyBufSize = 256 << 10
