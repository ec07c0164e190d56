// Package ui is the registry's web UI: server-rendered pages (html/template,
// embedded with the CSS and a small optional script) that browse
// repositories, tags, images, referrers, storage use and GC state. It reads
// through the small interfaces in source.go, shows each user only what the
// access policy lets them pull, and performs its one write, a delete,
// through the registry's own DELETE handler so that tag policy, audit and
// webhooks apply. Every page works without JavaScript.
package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stratus-registry/stratus/registry"
)

// DefaultSessionTTL is how long a login lasts unless configured.
const DefaultSessionTTL = 12 * time.Hour

// Options are what the UI reads and acts through. Source and API are
// required; every other service is optional and shown as absent.
type Options struct {
	Source Source
	// API is the registry's HTTP handler (with audit, without the auth
	// middleware: the UI sets the user itself); deletes go through it.
	API      http.Handler
	GC       GCReports
	Health   Health
	Webhooks WebhookQueue
	// Access nil means the registry has no auth: everything is visible,
	// and deletes are what the API allows anonymous callers.
	Access Access
	// SessionKey signs sessions and CSRF tokens (at least 32 bytes); nil:
	// a random key of this process (sessions end with it).
	SessionKey []byte
	SessionTTL time.Duration
	Logger     *slog.Logger
}

// UI is the http.Handler of everything under Prefix.
type UI struct {
	src      Source
	api      http.Handler
	gc       GCReports
	health   Health
	webhooks WebhookQueue
	access   Access
	sessions *sessions
	pages    *pages
	logger   *slog.Logger
	handler  http.Handler
}

// New checks opts and parses the embedded templates.
func New(opts Options) (*UI, error) {
	if opts.Source == nil || opts.API == nil {
		return nil, errors.New("ui: a content source and the registry API are required")
	}
	ttl := opts.SessionTTL
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	s, err := newSessions(opts.SessionKey, ttl)
	if err != nil {
		return nil, err
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	u := &UI{src: opts.Source, api: opts.API, gc: opts.GC, health: opts.Health, webhooks: opts.Webhooks,
		access: opts.Access, sessions: s, pages: p, logger: opts.Logger}
	if u.logger == nil {
		u.logger = slog.New(slog.DiscardHandler)
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, u.sessions.visitor(r), errForbidden("cross-origin request refused"))
	}))
	u.handler = secure(cop.Handler(http.HandlerFunc(u.serve)))
	return u, nil
}

func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.handler.ServeHTTP(w, r) }

// pageFunc handles one page; errors become error pages (fail).
type pageFunc func(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error

func (u *UI) serve(w http.ResponseWriter, r *http.Request) {
	rt := parsePath(r.URL.EscapedPath())
	v := u.sessions.visitor(r)
	h, allow := u.handlerFor(rt, r.Method)
	if h == nil {
		if allow == "" {
			u.fail(w, r, v, errNotFound("no such page"))
			return
		}
		w.Header().Set("Allow", allow)
		u.fail(w, r, v, &pageError{status: http.StatusMethodNotAllowed, msg: "method " + r.Method + " is not allowed here"})
		return
	}
	if rt.page != pageStatic {
		w.Header().Set("Cache-Control", "no-store")
	}
	if v.user != "" && u.access != nil {
		// The access log and audit name the signed-in user.
		r = r.WithContext(u.access.WithSessionUser(r.Context(), v.user))
	}
	if err := h(w, r, rt, v); err != nil {
		u.fail(w, r, v, err)
	}
}

// handlerFor picks the handler of a method on a page, or the methods the
// page allows.
func (u *UI) handlerFor(rt uiRoute, method string) (pageFunc, string) {
	get := method == http.MethodGet || method == http.MethodHead
	post := method == http.MethodPost
	pick := func(g, p pageFunc) (pageFunc, string) {
		switch {
		case get && g != nil:
			return g, ""
		case post && p != nil:
			return p, ""
		case g != nil && p != nil:
			return nil, "GET, HEAD, POST"
		case g != nil:
			return nil, "GET, HEAD"
		}
		return nil, "POST"
	}
	switch rt.page {
	case pageRepos:
		return pick(u.repositories, nil)
	case pageRepo:
		return pick(u.repository, nil)
	case pageManifest:
		return pick(u.manifest, nil)
	case pageTag:
		return pick(u.tagRedirect, nil)
	case pageReferrers:
		return pick(u.referrers, nil)
	case pageDelete:
		return pick(u.confirmDelete, u.doDelete)
	case pageStorage:
		return pick(u.storage, nil)
	case pageStatus:
		return pick(u.status, nil)
	case pageLogin:
		return pick(u.loginForm, u.login)
	case pageLogout:
		return pick(nil, u.logout)
	case pageStatic:
		return pick(u.static, nil)
	}
	return nil, ""
}

// canPull reports whether the visitor may see repo.
func (u *UI) canPull(r *http.Request, v visitor, repo string) bool {
	return u.access == nil || u.access.CanUser(r.Context(), v.user, repo, registry.ActionPull)
}

// canDelete reports whether the visitor may delete in repo. Without auth
// the API allows it, so the UI offers it.
func (u *UI) canDelete(r *http.Request, v visitor, repo string) bool {
	return u.access == nil || u.access.CanUser(r.Context(), v.user, repo, registry.ActionDelete)
}

// visible is ErrNotFound for a repository the visitor may not pull: a
// hidden repository and a missing one look the same.
func (u *UI) visible(r *http.Request, v visitor, repo string) error {
	if !u.canPull(r, v, repo) {
		return errNotFound(fmt.Sprintf("repository %s not found", repo))
	}
	return nil
}
