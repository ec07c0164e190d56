// Package registry implements the OCI Distribution 1.1 / Docker Registry v2
// HTTP API on top of the content store (registry/content) and a
// locking.Store (upload sessions, leases, GC pins). It keeps no state of
// its own between requests, so any number of replicas can serve the same
// store. Handlers parse, authorize, call the content store and write the
// answer; uploads keep their session logic here; GC is registry/gc.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/registry/gc"
	"github.com/stratus-registry/stratus/storage"
)

// Deps are the services a Registry runs on.
type Deps struct {
	Storage storage.Driver
	Locking locking.Store
	Logger  *slog.Logger
	// Authorizer decides every request; nil allows all (no auth yet).
	Authorizer Authorizer
	// Events receives push, pull, delete and mount events; nil drops them.
	Events EventSink
	// Budget bounds the process's large buffers (manifest bodies,
	// listing pages); nil reserves nothing. See package membudget.
	Budget storage.BufferBudget
	// Limits are the per-request bounds that are not about content.
	Limits Limits
	// UploadSlots bound concurrent upload sessions per repository; nil:
	// unbounded.
	UploadSlots UploadSlots
	// TagPolicy makes tags immutable (policy/immutable); nil: none is.
	TagPolicy TagPolicy
	// Retention deletes tags in GC passes (policy/retention); nil: none.
	Retention gc.Retention
	// Mirror serves the pull-through mirror prefixes; nil mirrors nothing.
	Mirror Mirror
	// GCStorage is Storage as garbage collection uses it (cmd/stratus
	// paces it to registry.gc.max_rate); nil: Storage itself.
	GCStorage storage.Driver
	// PinTTL is how long Locking remembers a pin; a GC pass stops
	// claiming before it outlives that (gc.Config.PinTTL). 0: unbounded.
	PinTTL time.Duration
	// Activity counts the API requests served (package activity), so GC
	// on any replica can yield to them; nil counts nothing.
	Activity ActivityCounter
}

// ActivityCounter counts one served API request; it must not block.
type ActivityCounter interface{ Served() }

type noActivity struct{}

func (noActivity) Served() {}

// Registry is the HTTP handler of the distribution API.
type Registry struct {
	cfg     Config
	content *content.Store
	// gcContent is content over Deps.GCStorage.
	gcContent *content.Store
	locks     locking.Store
	auth      Authorizer
	events    EventSink
	logger    *slog.Logger
	// uploadSlots is nil without a per-repository upload limit.
	uploadSlots UploadSlots
	tagPolicy   TagPolicy
	retention   gc.Retention
	pinTTL      time.Duration
	markCache   *gc.MarkCache // what GC's mark read, kept from pass to pass
	// redirects: the store signs pull URLs (so whole-blob GETs redirect).
	redirects bool
	// hooks let tests force interleavings between requests and GC; nil
	// outside tests.
	hooks *hooks
	stats stats
	// copyBufs recycles the buffers blob downloads copy through.
	copyBufs sync.Pool
	budget   storage.BufferBudget
	limits   Limits
	mirror   Mirror
	activity ActivityCounter
}

// hooks are called at the points of the pin/claim protocol where races
// matter.
type hooks struct {
	afterPin   func(key string, err error)
	afterClaim func(key string, claimed bool)
}

// contentHooks passes the content store's protocol events to g.hooks, read
// at each call so a test can set them on a running registry.
type contentHooks struct{ g *Registry }

func (h contentHooks) AfterPin(key string, err error) {
	if hk := h.g.hooks; hk != nil && hk.afterPin != nil {
		hk.afterPin(key, err)
	}
}

func (h contentHooks) AfterClaim(key string, claimed bool) {
	if hk := h.g.hooks; hk != nil && hk.afterClaim != nil {
		hk.afterClaim(key, claimed)
	}
}

// New checks the configuration and returns the handler.
func New(ctx context.Context, cfg Config, deps Deps) (*Registry, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Storage == nil || deps.Locking == nil {
		return nil, fmt.Errorf("registry: storage and locking are required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Registry{cfg: cfg, locks: deps.Locking, auth: deps.Authorizer, logger: logger, budget: deps.Budget, limits: deps.Limits,
		uploadSlots: deps.UploadSlots}
	if g.budget == nil {
		g.budget = storage.NoBudget{}
	}
	if g.auth == nil {
		g.auth = allowAll{}
	}
	g.retention = deps.Retention
	g.pinTTL = deps.PinTTL
	g.markCache = gc.NewMarkCache(*cfg.GC.MarkCache)
	if g.tagPolicy = deps.TagPolicy; g.tagPolicy == nil {
		g.tagPolicy = noTagPolicy{}
	}
	if g.mirror = deps.Mirror; g.mirror == nil {
		g.mirror = noMirror{}
	}
	if g.events = deps.Events; g.events == nil {
		g.events = nopSink{}
	}
	if g.activity = deps.Activity; g.activity == nil {
		g.activity = noActivity{}
	}
	cs, err := content.New(deps.Storage, deps.Locking, content.Options{
		MaxManifestSize: int64(cfg.MaxManifestSize), Logger: logger, Hooks: contentHooks{g},
	})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	g.content, g.gcContent = cs, cs
	// Whether pulls redirect is fixed by configuration: ask once. Any
	// answer but "unsupported" (even an error) keeps the redirect path.
	_, signErr := cs.SignedURL(ctx, content.Blob{Data: "data/0"})
	g.redirects = !errors.Is(signErr, storage.ErrUnsupported)
	if deps.GCStorage != nil {
		g.gcContent = cs.WithDriver(deps.GCStorage)
	}
	if _, err := g.collector(); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	g.copyBufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	return g, nil
}

// handlerFunc is a handler that reports failures as errors; ServeHTTP turns
// them into the spec's JSON error bodies.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt := parseRoute(r.URL.EscapedPath())
	if rt.kind != routeNone && rt.kind != routeBase {
		// Only endpoints that reach the store make GC yield; the base
		// endpoint is what load balancers and clients probe.
		g.activity.Served()
	}
	limitBodyRate(w, r, g.limits)
	if err := g.dispatch(w, r, rt); err != nil {
		// httpmw.RequestID in front has vetted or generated the id and
		// echoes it; its access log line covers every request.
		g.writeError(w, r, r.Header.Get("X-Request-Id"), err)
	}
}

func (g *Registry) dispatch(w http.ResponseWriter, r *http.Request, rt route) error {
	if rt.kind == routeNone {
		// Not an endpoint of the API. The spec's answer for an endpoint a
		// registry does not implement is 404, and its code for "missing
		// implementation" is UNSUPPORTED (NAME_UNKNOWN would claim a
		// repository is missing; the spec allows no code of its own here).
		return newError(codeUnsupported, "no such endpoint: %s", r.URL.Path).withStatus(http.StatusNotFound)
	}
	method := r.Method
	if !rt.methodAllowed(method) {
		return errMethod(rt, method)
	}
	if rt.kind == routeBase {
		if err := g.auth.Authorize(r.Context(), r, accessFor(rt, method)); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if method != http.MethodHead {
			w.Write([]byte("{}"))
		}
		return nil
	}
	if rt.kind != routeCatalog && !validName(rt.name) {
		return newError(codeNameInvalid, "invalid repository name %q: components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', at most %d characters", rt.name, maxNameLength).
			withDetail(map[string]string{"name": rt.name})
	}
	if err := g.auth.Authorize(r.Context(), r, accessFor(rt, method)); err != nil {
		return err
	}
	if rt.kind == routeCatalog {
		return g.getCatalog(w, r)
	}
	// Authorized on the name the client asked for; served from the
	// mirror's local repository.
	rt, err := g.routeMirror(r, rt)
	if err != nil {
		return err
	}
	arg, err := url.PathUnescape(rt.arg)
	if err != nil {
		return newError(codeDigestInvalid, "malformed path segment %q", rt.arg)
	}
	rt.arg = arg
	return g.handler(rt, method)(w, r, rt)
}

// handler picks the handler of an allowed method on a repository route.
func (g *Registry) handler(rt route, method string) handlerFunc {
	switch rt.kind {
	case routeTags:
		return g.getTags
	case routeReferrers:
		return g.getReferrers
	case routeManifest:
		switch method {
		case http.MethodPut:
			return g.putManifest
		case http.MethodDelete:
			return g.deleteManifest
		}
		return g.getManifest
	case routeBlob:
		if method == http.MethodDelete {
			return g.deleteBlob
		}
		return g.getBlob
	case routeUploadStart:
		return g.startUpload
	}
	switch method { // routeUpload
	case http.MethodGet:
		return g.uploadStatus
	case http.MethodPatch:
		return g.patchUpload
	case http.MethodPut:
		return g.putUpload
	}
	return g.cancelUpload
}

// repo is the content of the route's repository (its name is valid:
// dispatch checked it).
func (g *Registry) repo(rt route) (*content.Repository, error) {
	return g.content.Repository(rt.name)
}

// writeEmpty answers with a status and no body, as the spec's upload and
// delete responses are.
func writeEmpty(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func parseDigestParam(s, what string) (digest.Digest, error) {
	d, err := ParseDigest(s)
	if err != nil {
		return "", newError(codeDigestInvalid, "%s: %v", what, err).
			withDetail(map[string]string{"digest": s})
	}
	return d, nil
}
