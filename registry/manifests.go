package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/storage"
)

// maxTagParams bounds ?tag= on a manifest PUT (the spec asks for at least 10).
const maxTagParams = 50

// refCheckConcurrency bounds parallel reference checks of one manifest PUT.
const refCheckConcurrency = 8

func errManifestUnknown(ref string) *apiError {
	return newError(http.StatusNotFound, codeManifestUnknown, "manifest %s is not known to this repository", ref).
		withDetail(map[string]string{"reference": ref})
}

func parseRefParam(s string) (Reference, error) {
	ref, err := ParseReference(s)
	if err != nil {
		code := codeManifestInvalid
		if strings.Contains(s, ":") {
			code = codeDigestInvalid
		}
		return Reference{}, newError(http.StatusBadRequest, code, "invalid reference: %v", err).
			withDetail(map[string]string{"reference": s})
	}
	return ref, nil
}

// resolve turns a reference into a manifest digest.
func (g *Registry) resolve(ctx context.Context, name string, ref Reference) (Digest, error) {
	if ref.Tag == "" {
		return ref.Digest, nil
	}
	b, err := storage.ReadAll(ctx, g.store, tagKey(name, ref.Tag), maxRecordSize)
	if errors.Is(err, storage.ErrNotFound) {
		return Digest{}, errManifestUnknown(ref.Tag)
	}
	if err != nil {
		return Digest{}, err
	}
	d, err := ParseDigest(strings.TrimSpace(string(b)))
	if err != nil {
		return Digest{}, fmt.Errorf("tag %s of %s is corrupt: %w", ref.Tag, name, err)
	}
	return d, nil
}

func (g *Registry) readManifest(ctx context.Context, name string, d Digest) (string, []byte, error) {
	b, err := storage.ReadAll(ctx, g.store, manifestKey(name, d), int64(g.cfg.MaxManifestSize)+256)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil, errManifestUnknown(d.String())
	}
	if err != nil {
		return "", nil, err
	}
	mt, body, err := decodeStoredManifest(b)
	if err != nil {
		return "", nil, fmt.Errorf("manifest %s in %s: %w", d, name, err)
	}
	return mt, body, nil
}

func (g *Registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	ref, err := parseRefParam(rt.arg)
	if err != nil {
		return err
	}
	d, err := g.resolve(ctx, rt.name, ref)
	if err != nil {
		return err
	}
	mt, body, err := g.readManifest(ctx, rt.name, d)
	if err != nil {
		if hasCode(err, codeManifestUnknown) {
			return errManifestUnknown(ref.String())
		}
		return err
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

func (g *Registry) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	ref, err := parseRefParam(rt.arg)
	if err != nil {
		return err
	}
	tags := r.URL.Query()["tag"]
	if len(tags) > maxTagParams {
		return newError(http.StatusRequestURITooLong, codeManifestInvalid, "at most %d tag parameters per request", maxTagParams)
	}
	for _, t := range tags {
		if !validTag(t) {
			return newError(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", t).withDetail(map[string]string{"tag": t})
		}
	}
	limit := int64(g.cfg.MaxManifestSize)
	if r.ContentLength > limit {
		return newError(http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest of %d bytes exceeds the limit of %s", r.ContentLength, g.cfg.MaxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return newError(http.StatusBadRequest, codeManifestInvalid, "reading the manifest failed: %v", err)
	}
	if int64(len(body)) > limit {
		return newError(http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest exceeds the limit of %s", g.cfg.MaxManifestSize)
	}
	pm, err := parseNewManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	alg := "sha256"
	if ref.Tag == "" {
		alg = ref.Digest.Alg
	}
	d := computeDigest(alg, body)
	if ref.Tag == "" && d != ref.Digest {
		return newError(http.StatusBadRequest, codeDigestInvalid, "manifest body has digest %s, not %s", d, ref.Digest).
			withDetail(map[string]string{"digest": ref.Digest.String()})
	}
	// Pin the manifest itself: re-pushing (or tagging) a manifest that GC
	// is about to delete as untagged must either stop GC or fail here.
	if err := g.pinManifest(ctx, rt.name, d, true); err != nil {
		if hasCode(err, codeBlobUnknown) {
			return errBeingCollected(d)
		}
		return err
	}
	if err := g.checkReferences(ctx, rt.name, pm); err != nil {
		return err
	}
	stored := encodeStoredManifest(pm.MediaType, body)
	if _, err := g.store.Put(ctx, manifestKey(rt.name, d), bytesReader(string(stored)), storage.PutOptions{Size: int64(len(stored)), ContentType: pm.MediaType}); err != nil {
		return err
	}
	if pm.Subject != nil {
		if err := g.putReferrer(ctx, rt.name, *pm.Subject, d, pm, int64(len(body))); err != nil {
			return err
		}
	}
	if ref.Tag != "" {
		tags = append([]string{ref.Tag}, tags...)
	}
	for _, t := range tags {
		if _, err := g.store.Put(ctx, tagKey(rt.name, t), bytesReader(d.String()), storage.PutOptions{Size: int64(len(d.String()))}); err != nil {
			return err
		}
	}
	if err := g.ensureRepo(ctx, rt.name); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if pm.Subject != nil {
		h.Set("OCI-Subject", pm.Subject.String())
	}
	for _, t := range r.URL.Query()["tag"] {
		h.Add("OCI-Tag", t)
	}
	writeEmpty(w, http.StatusCreated)
	return nil
}

// checkReferences verifies that every blob and child manifest the manifest
// needs is in the repository. Each digest is pinned BEFORE it is checked
// (design.md §6), so GC either sees the pin and keeps the blob, or has
// already claimed it and the pin fails: there is no window in which the
// check passes and the blob then disappears. The whole check runs under
// pin_timeout, which is shorter than the GC grace period.
func (g *Registry) checkReferences(ctx context.Context, name string, pm *parsedManifest) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PinTimeout)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(refCheckConcurrency)
	for _, ref := range pm.Refs {
		eg.Go(func() error { return g.checkReference(ctx, name, ref) })
	}
	return eg.Wait()
}

func (g *Registry) checkReference(ctx context.Context, name string, ref reference) error {
	missing := func(what string) error {
		return newError(http.StatusBadRequest, codeManifestBlobUnknown, "%s %s is not in repository %s; push it first", what, ref.Digest, name).
			withDetail(map[string]string{"digest": ref.Digest.String()})
	}
	what := "blob"
	if ref.Manifest {
		what = "child manifest"
	}
	pin := g.pinLink
	if ref.Manifest {
		pin = g.pinManifest
	}
	if err := pin(ctx, name, ref.Digest, true); err != nil {
		if hasCode(err, codeBlobUnknown) {
			return missing(what)
		}
		return err
	}
	if ref.Manifest {
		size, err := g.storedManifestSize(ctx, manifestKey(name, ref.Digest))
		if errors.Is(err, storage.ErrNotFound) {
			return missing(what)
		}
		if err != nil {
			return err
		}
		if size != ref.Size {
			return newError(http.StatusBadRequest, codeManifestInvalid, "%s: the descriptor of child manifest %s says %d bytes but the manifest has %d", ref.Where, ref.Digest, ref.Size, size).
				withDetail(map[string]string{"digest": ref.Digest.String()})
		}
		return nil
	}
	rec, err := g.servable(ctx, name, ref.Digest)
	if err != nil {
		if hasCode(err, codeBlobUnknown) {
			return missing("blob")
		}
		return err
	}
	if rec.Size != ref.Size {
		return newError(http.StatusBadRequest, codeManifestInvalid, "%s: the descriptor of %s says %d bytes but the blob has %d", ref.Where, ref.Digest, ref.Size, rec.Size).
			withDetail(map[string]string{"digest": ref.Digest.String()})
	}
	return nil
}

func (g *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	ref, err := parseRefParam(rt.arg)
	if err != nil {
		return err
	}
	if ref.Tag != "" {
		// Deleting a tag removes only the tag (distribution spec 1.1).
		if _, err := g.store.Stat(ctx, tagKey(rt.name, ref.Tag)); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return errManifestUnknown(ref.Tag)
			}
			return err
		}
		if err := g.store.Delete(ctx, tagKey(rt.name, ref.Tag)); err != nil {
			return err
		}
		writeEmpty(w, http.StatusAccepted)
		return nil
	}
	d := ref.Digest
	mt, body, err := g.readManifest(ctx, rt.name, d)
	if err != nil {
		return err
	}
	// Tags go first: a tag must never point at a missing manifest.
	if err := g.untag(ctx, rt.name, d); err != nil {
		return err
	}
	if pm, err := parseManifest(mt, body); err == nil && pm.Subject != nil {
		if err := g.store.Delete(ctx, referrerKey(rt.name, *pm.Subject, d)); err != nil {
			return err
		}
	}
	if err := g.store.Delete(ctx, manifestKey(rt.name, d)); err != nil {
		return err
	}
	writeEmpty(w, http.StatusAccepted)
	return nil
}

// untag deletes every tag of name that points at d, page by page.
func (g *Registry) untag(ctx context.Context, name string, d Digest) error {
	prefix := tagsPrefix(name)
	after := ""
	for {
		page, err := g.store.List(ctx, prefix, after, 0)
		if err != nil {
			return err
		}
		var doomed []string
		for _, o := range page.Objects {
			b, err := storage.ReadAll(ctx, g.store, o.Key, maxRecordSize)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == d.String() {
				doomed = append(doomed, o.Key)
			}
		}
		if len(doomed) > 0 {
			if err := g.store.DeleteBatch(ctx, doomed); err != nil {
				return err
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

// putReferrer records d as a referrer of subject: one small object holding
// the descriptor the referrers API returns. The annotations are copied as
// pushed and nothing is HTML-escaped, so the record stays within
// maxReferrerRecord, the cap getReferrers reads it with.
func (g *Registry) putReferrer(ctx context.Context, name string, subject, d Digest, pm *parsedManifest, size int64) error {
	rec := referrerRecord{MediaType: pm.MediaType, Digest: d.String(), Size: size, ArtifactType: pm.ArtifactType, Annotations: pm.rawAnnotations}
	if rec.Annotations == nil && len(pm.Annotations) > 0 {
		b, err := json.Marshal(pm.Annotations)
		if err != nil {
			return fmt.Errorf("encode the annotations of %s: %w", d, err)
		}
		rec.Annotations = b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return fmt.Errorf("encode the referrer record of %s: %w", d, err)
	}
	b := bytes.TrimSpace(buf.Bytes())
	if int64(len(b)) > g.maxReferrerRecord() {
		return fmt.Errorf("referrer record of %s is %d bytes, over the %d the referrers API reads", d, len(b), g.maxReferrerRecord())
	}
	_, err := g.store.Put(ctx, referrerKey(name, subject, d), bytes.NewReader(b), storage.PutOptions{Size: int64(len(b)), ContentType: "application/json"})
	return err
}
