package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// maxTagParams bounds ?tag= on a manifest PUT (the spec asks for at least 10).
const maxTagParams = 50

func errManifestUnknown(ref string) *apiError {
	return newError(codeManifestUnknown, "manifest %s is not known to this repository", ref).
		withDetail(map[string]string{"reference": ref})
}

// manifestErr gives a content error about reference ref its answer.
func manifestErr(err error, ref string) error {
	if errors.Is(err, content.ErrManifestUnknown) {
		return errManifestUnknown(ref).withCause(err)
	}
	return err
}

func parseRefParam(s string) (Reference, error) {
	ref, err := ParseReference(s)
	if err != nil {
		code := codeManifestInvalid
		if strings.Contains(s, ":") {
			code = codeDigestInvalid
		}
		return Reference{}, newError(code, "invalid reference: %v", err).
			withDetail(map[string]string{"reference": s})
	}
	return ref, nil
}

// resolve turns a reference into a manifest digest.
func resolve(ctx context.Context, repo *content.Repository, ref Reference) (digest.Digest, error) {
	if ref.Tag == "" {
		return ref.Digest, nil
	}
	return repo.ResolveTag(ctx, ref.Tag)
}

func (g *Registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := parseRefParam(rt.arg)
	if err != nil {
		return err
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	d, err := resolve(r.Context(), repo, ref)
	if err != nil {
		return manifestErr(err, ref.String())
	}
	m, err := repo.GetManifest(r.Context(), d)
	if err != nil {
		return manifestErr(err, ref.String())
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(m.Body)
	}
	g.emitPull(r, rt.name, d, m.MediaType, len(m.Body), ref.Tag)
	return nil
}

func (g *Registry) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := parseRefParam(rt.arg)
	if err != nil {
		return err
	}
	tags := r.URL.Query()["tag"]
	if len(tags) > maxTagParams {
		// 414: the limit is on the URL (HTTP's status for it).
		return newError(codeManifestInvalid, "at most %d tag parameters per request", maxTagParams).withStatus(http.StatusRequestURITooLong)
	}
	for _, t := range tags {
		if !validTag(t) {
			return newError(codeManifestInvalid, "invalid tag %q", t).withDetail(map[string]string{"tag": t})
		}
	}
	body, release, err := g.readManifestBody(r)
	if err != nil {
		return err
	}
	defer release()
	pm, err := content.ParseNewManifest(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	alg := digest.SHA256
	if ref.Tag == "" {
		alg = ref.Digest.Algorithm()
	}
	d := computeDigest(alg, body)
	if ref.Tag == "" && d != ref.Digest {
		return newError(codeDigestInvalid, "manifest body has digest %s, not %s", d, ref.Digest).
			withDetail(map[string]string{"digest": ref.Digest.String()})
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	all := tags
	if ref.Tag != "" {
		all = append([]string{ref.Tag}, tags...)
	}
	if err := repo.PutManifest(r.Context(), d, pm, body, all, g.cfg.PinTimeout); err != nil {
		var re *content.ReferenceError
		if errors.As(err, &re) {
			return toAPIError(err).withDetail(map[string]string{"digest": re.Ref.Digest.String()})
		}
		return err
	}
	g.emitManifest(r, EventPush, rt.name, d, pm.MediaType, len(body), all)
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if pm.Subject != nil {
		h.Set("OCI-Subject", pm.Subject.String())
	}
	for _, t := range tags {
		h.Add("OCI-Tag", t)
	}
	writeEmpty(w, http.StatusCreated)
	return nil
}

// readManifestBody reads a pushed manifest up to max_manifest_size; a
// larger one is 413 (HTTP's status for a body over the limit). The body's
// bytes (the limit when its length is unknown) are reserved from the
// memory budget until release.
func (g *Registry) readManifestBody(r *http.Request) (body []byte, release func(), err error) {
	limit := int64(g.cfg.MaxManifestSize)
	if r.ContentLength > limit {
		return nil, nil, newError(codeManifestInvalid, "manifest of %d bytes exceeds the limit of %s", r.ContentLength, g.cfg.MaxManifestSize).withStatus(http.StatusRequestEntityTooLarge)
	}
	need := limit
	if r.ContentLength >= 0 {
		need = r.ContentLength
	}
	if release, err = g.budget.Acquire(r.Context(), need); err != nil {
		return nil, nil, err
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		release()
		return nil, nil, newError(codeManifestInvalid, "reading the manifest failed: %v", err)
	}
	if int64(len(body)) > limit {
		release()
		return nil, nil, newError(codeManifestInvalid, "manifest exceeds the limit of %s", g.cfg.MaxManifestSize).withStatus(http.StatusRequestEntityTooLarge)
	}
	return body, release, nil
}

func (g *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	ref, err := parseRefParam(rt.arg)
	if err != nil {
		return err
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	if ref.Tag != "" {
		// Deleting a tag removes only the tag (distribution spec 1.1).
		err = repo.DeleteTag(r.Context(), ref.Tag)
	} else {
		err = repo.DeleteManifest(r.Context(), ref.Digest)
	}
	if err != nil {
		return manifestErr(err, ref.String())
	}
	g.emitDelete(r, rt.name, ref)
	writeEmpty(w, http.StatusAccepted)
	return nil
}
