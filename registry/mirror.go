package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// Mirror serves the repositories under pull-through mirror prefixes (package
// proxycache). The registry asks it, after authorization, which local
// repository a request means; for a mirrored one it refuses writes, lets
// the mirror bring manifests up to date and fills blob misses from it.
// Everything else (tag lists, ranges, signed URLs) stays local.
type Mirror interface {
	// Route maps the repository a request names (with its ?ns= query) to
	// the local repository it is stored under. mirrored is false for an
	// ordinary repository, whose local name is name. An error is a
	// *MirrorError.
	Route(r *http.Request, name string) (local string, mirrored bool, err error)
	// Manifest makes manifest ref of the mirrored repository local present
	// in the store (fetching it, or re-checking a tag whose TTL ran out)
	// and returns its digest.
	Manifest(ctx context.Context, local string, ref Reference) (digest.Digest, error)
	// FetchBlob is called on a local miss of blob d. It either answers the
	// request itself (served, streaming upstream bytes while storing them)
	// or reports that the blob is now stored, for the registry to serve.
	FetchBlob(w http.ResponseWriter, r *http.Request, local string, d digest.Digest) (served bool, err error)
}

// Mirror error codes: the OCI codes a Mirror may answer with.
const (
	MirrorDenied          = codeDenied
	MirrorNameUnknown     = codeNameUnknown
	MirrorNameInvalid     = codeNameInvalid
	MirrorManifestUnknown = codeManifestUnknown
	MirrorBlobUnknown     = codeBlobUnknown
	MirrorUnavailable     = codeUnavailable
	MirrorTooManyRequests = codeTooManyRequests
)

// MirrorError is a Mirror's failure with the OCI code it is answered with.
type MirrorError struct {
	Code    string
	Message string
	// RetryAfter, when set, becomes the Retry-After header.
	RetryAfter time.Duration
	Err        error
}

func (e *MirrorError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *MirrorError) Unwrap() error { return e.Err }

// mirrorErr turns a Mirror's error into the registry's answer; errors that
// are not a *MirrorError (store faults) take the usual mapping.
func mirrorErr(err error) error {
	var me *MirrorError
	if !errors.As(err, &me) {
		return err
	}
	ae := newError(me.Code, "%s", me.Message).withCause(me.Err)
	if me.RetryAfter > 0 {
		ae.withHeader("Retry-After", strconv.Itoa(int((me.RetryAfter+time.Second-1)/time.Second)))
	}
	return ae
}

// noMirror mirrors nothing: the registry without pull-through prefixes.
type noMirror struct{}

func (noMirror) Route(_ *http.Request, name string) (string, bool, error) { return name, false, nil }

func (noMirror) Manifest(context.Context, string, Reference) (digest.Digest, error) {
	return "", &MirrorError{Code: MirrorManifestUnknown, Message: "no mirror"}
}

func (noMirror) FetchBlob(http.ResponseWriter, *http.Request, string, digest.Digest) (bool, error) {
	return false, &MirrorError{Code: MirrorBlobUnknown, Message: "no mirror"}
}

// routeMirror points rt at the local repository of a mirrored name and
// refuses anything but a pull there.
func (g *Registry) routeMirror(r *http.Request, rt route) (route, error) {
	local, mirrored, err := g.mirror.Route(r, rt.name)
	if err != nil {
		return rt, mirrorErr(err)
	}
	if !mirrored {
		return rt, nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return rt, newError(codeDenied, "repository %s is a pull-through mirror of an upstream registry: pushes and deletes are refused; push to a repository outside the mirror prefixes", rt.name).
			withDetail(map[string]string{"name": rt.name})
	}
	rt.name, rt.mirrored = local, true
	return rt, nil
}

// resolveManifest is resolve for a route, through the mirror for a
// mirrored repository.
func (g *Registry) resolveManifest(ctx context.Context, rt route, repo *content.Repository, ref Reference) (digest.Digest, error) {
	if !rt.mirrored {
		return resolve(ctx, repo, ref)
	}
	d, err := g.mirror.Manifest(ctx, rt.name, ref)
	return d, mirrorErr(err)
}

// serveBlobOrFetch stats blob d for serving; on a miss in a mirrored
// repository the mirror fetches it, and either answers the request itself
// (served) or leaves the blob stored for the local path.
func (g *Registry) serveBlobOrFetch(w http.ResponseWriter, r *http.Request, rt route, repo *content.Repository, d digest.Digest) (blob content.Blob, served bool, err error) {
	blob, err = repo.ServeBlob(r.Context(), d)
	if err == nil || !rt.mirrored || !errors.Is(err, content.ErrBlobUnknown) {
		return blob, false, err
	}
	served, err = g.mirror.FetchBlob(w, r, rt.name, d)
	if err != nil || served {
		return content.Blob{}, served, mirrorErr(err)
	}
	blob, err = repo.ServeBlob(r.Context(), d)
	return blob, false, err
}
