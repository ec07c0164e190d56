package auth

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/registry"
)

// Audit actions.
const (
	ActionLoginFailed  = "login_failed"
	ActionDenied       = "denied"
	ActionPushManifest = "push_manifest" // by digest
	ActionTag          = "tag"           // manifest PUT by tag: push and move the tag
	ActionPushBlob     = "push_blob"     // upload committed (PUT, or POST ?digest=)
	ActionMountBlob    = "mount_blob"
	ActionDelete       = "delete"
)

// Event is one audit record. Actor and client IP come from the context.
type Event struct {
	Action     string
	Repository string
	Digest     string
	Tag        string
	// Result is "ok", "failed" (with Status) or "denied".
	Result string
	Status int
	// Reason says why a login failed or a request was denied.
	Reason string
	// User is the name a failed login claimed (there is no actor yet).
	User string
}

// Auditor writes audit lines: one structured line per event, marked
// audit=true so that a log pipeline can route them apart. It never logs
// a credential: events carry names, digests and results only.
type Auditor struct {
	logger *slog.Logger
}

// NewAuditor writes to logger; nil discards.
func NewAuditor(logger *slog.Logger) *Auditor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Auditor{logger: logger.With(slog.Bool("audit", true))}
}

// Record writes one event.
func (a *Auditor) Record(ctx context.Context, e Event) {
	attrs := []slog.Attr{
		slog.String("actor", IdentityFrom(ctx).Name),
		slog.String("client_ip", httpmw.ClientIP(ctx)),
		slog.String("action", e.Action),
		slog.String("repo", e.Repository),
		slog.String("digest", e.Digest),
		slog.String("tag", e.Tag),
		slog.String("result", e.Result),
	}
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.User != "" {
		attrs = append(attrs, slog.String("user", e.User))
	}
	level := slog.LevelInfo
	if e.Result != "ok" {
		level = slog.LevelWarn
	}
	a.logger.LogAttrs(ctx, level, "audit", attrs...)
}

// Writes is middleware that records every push, tag change and delete
// once the registry has answered it, with the digest the registry reports
// (Docker-Content-Digest). Requests refused for lack of access are left
// out: Authorize records those as denied. route resolves the request with
// the registry's router.
func (a *Auditor) Writes(route httpmw.RouteFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rt := route(r)
			action := writeAction(rt, r)
			if action == "" {
				next.ServeHTTP(w, r)
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			a.recordWrite(r.Context(), action, rt, sw)
		})
	}
}

func (a *Auditor) recordWrite(ctx context.Context, action string, rt httpmw.Route, sw *statusWriter) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return
	}
	// POST without a commit (a session started, a mount that fell back
	// to an upload) changes nothing yet.
	if (action == ActionPushBlob || action == ActionMountBlob) && status == http.StatusAccepted {
		return
	}
	e := Event{Action: action, Repository: rt.Repository, Digest: sw.Header().Get("Docker-Content-Digest"), Result: "ok"}
	if status >= 300 {
		e.Result, e.Status = "failed", status
	}
	if ref := rt.Reference; ref != "" {
		if _, err := digest.Parse(ref); err != nil {
			e.Tag = ref
		} else if e.Digest == "" {
			e.Digest = ref
		}
	}
	if action == ActionPushManifest && e.Tag != "" {
		e.Action = ActionTag
	}
	a.Record(ctx, e)
}

// writeAction is the audit action of a request, or "" for a read.
func writeAction(rt httpmw.Route, r *http.Request) string {
	switch {
	case rt.Template == registry.RouteManifest && r.Method == http.MethodPut:
		return ActionPushManifest
	case (rt.Template == registry.RouteManifest || rt.Template == registry.RouteBlob) && r.Method == http.MethodDelete:
		return ActionDelete
	case rt.Template == registry.RouteUpload && r.Method == http.MethodPut:
		return ActionPushBlob
	case rt.Template == registry.RouteUploadStart && r.Method == http.MethodPost:
		if r.URL.Query().Has("mount") {
			return ActionMountBlob
		}
		return ActionPushBlob
	}
	return ""
}

// statusWriter remembers the status of a write request's answer. Write
// requests answer with small bodies, so it needs none of the optional
// interfaces (Flusher, ReaderFrom) of the blob downloads it never wraps.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
