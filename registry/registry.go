// Package registry implements the OCI Distribution 1.1 / Docker Registry v2
// HTTP API on top of a storage.Driver (durable state) and a locking.Store
// (upload sessions, leases, GC pins). It keeps no state of its own between
// requests, so any number of replicas can serve the same store.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

// Deps are the services a Registry runs on.
type Deps struct {
	Storage storage.Driver
	Locking locking.Store
	Logger  *slog.Logger
}

// Registry is the HTTP handler of the distribution API.
type Registry struct {
	cfg    Config
	store  storage.Driver
	locks  locking.Store
	logger *slog.Logger
	// hooks let tests force interleavings between requests and GC; nil
	// outside tests.
	hooks *hooks
	stats stats
	// copyBufs recycles the buffers blob downloads copy through.
	copyBufs sync.Pool
}

// hooks are called at the points of the pin/claim protocol where races
// matter.
type hooks struct {
	afterPin   func(key string, err error)
	afterClaim func(key string, claimed bool)
}

func (g *Registry) hookPin(key string, err error) {
	if g.hooks != nil && g.hooks.afterPin != nil {
		g.hooks.afterPin(key, err)
	}
}

func (g *Registry) hookClaim(key string, claimed bool) {
	if g.hooks != nil && g.hooks.afterClaim != nil {
		g.hooks.afterClaim(key, claimed)
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
	g := &Registry{cfg: cfg, store: deps.Storage, locks: deps.Locking, logger: logger}
	g.copyBufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	return g, nil
}

// handlerFunc is a handler that reports failures as errors; ServeHTTP turns
// them into the spec's JSON error bodies.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.Header().Set("X-Request-Id", id)
	rt := parseRoute(r.URL.EscapedPath())
	err := g.dispatch(w, r, rt)
	if err != nil {
		g.writeError(w, r, id, err)
	}
	g.logger.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "took", time.Since(start), "failed", err != nil)
}

func (g *Registry) dispatch(w http.ResponseWriter, r *http.Request, rt route) error {
	if rt.kind == routeNone {
		return newError(http.StatusNotFound, codeNameUnknown, "no such endpoint: %s", r.URL.Path)
	}
	method := r.Method
	if !rt.methodAllowed(method) {
		return errMethod(rt, method)
	}
	switch rt.kind {
	case routeBase:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if method != http.MethodHead {
			w.Write([]byte("{}"))
		}
		return nil
	case routeCatalog:
		return g.getCatalog(w, r)
	}
	if !validName(rt.name) {
		return newError(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q: components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', at most %d characters", rt.name, maxNameLength).
			withDetail(map[string]string{"name": rt.name})
	}
	arg, err := url.PathUnescape(rt.arg)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "malformed path segment %q", rt.arg)
	}
	rt.arg = arg
	var h handlerFunc
	switch rt.kind {
	case routeTags:
		h = g.getTags
	case routeReferrers:
		h = g.getReferrers
	case routeManifest:
		switch method {
		case http.MethodGet, http.MethodHead:
			h = g.getManifest
		case http.MethodPut:
			h = g.putManifest
		case http.MethodDelete:
			h = g.deleteManifest
		}
	case routeBlob:
		switch method {
		case http.MethodGet, http.MethodHead:
			h = g.getBlob
		case http.MethodDelete:
			h = g.deleteBlob
		}
	case routeUploadStart:
		h = g.startUpload
	case routeUpload:
		switch method {
		case http.MethodGet:
			h = g.uploadStatus
		case http.MethodPatch:
			h = g.patchUpload
		case http.MethodPut:
			h = g.putUpload
		case http.MethodDelete:
			h = g.cancelUpload
		}
	}
	return h(w, r, rt)
}

// writeEmpty answers with a status and no body, as the spec's upload and
// delete responses are.
func writeEmpty(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func parseDigestParam(s, what string) (Digest, error) {
	d, err := ParseDigest(s)
	if err != nil {
		return Digest{}, newError(http.StatusBadRequest, codeDigestInvalid, "%s: %v", what, err).
			withDetail(map[string]string{"digest": s})
	}
	return d, nil
}

// requestID is the caller's X-Request-Id when it is a sane token (a proxy
// in front sets one), else a new random one; it ties a client's report to
// the log line.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); len(id) > 0 && len(id) <= 128 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return id
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
