package registry

import (
	"context"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/gc"
)

// EventSink receives an event for every write the registry has stored and
// every manifest it served. The registry calls Emit only after the store
// acknowledged the write, so an event never announces something that was
// not stored; Emit must not block for long (it runs on the request path)
// and reports no error: the answer to the client does not depend on it.
type EventSink interface {
	Emit(ctx context.Context, e Event)
}

// EventAction is what happened.
type EventAction string

const (
	EventPush   EventAction = "push"
	EventPull   EventAction = "pull"
	EventDelete EventAction = "delete"
	EventMount  EventAction = "mount"
)

// EventKind is what it happened to.
type EventKind string

const (
	EventManifest EventKind = "manifest"
	EventBlob     EventKind = "blob"
	EventTag      EventKind = "tag"
)

// Event is one registry event, in the registry's own terms (the sink
// renders it for its receivers).
type Event struct {
	Action         EventAction
	Kind           EventKind
	Repository     string
	FromRepository string // mounts
	Digest         digest.Digest
	MediaType      string
	Size           int64
	Tag            string
	// Request is the request behind the event; nil for deletions by
	// garbage collection. The sink reads the request id, client address,
	// host, method, user agent and (once auth lands) the actor from it.
	Request *http.Request
}

type nopSink struct{}

func (nopSink) Emit(context.Context, Event) {}

// emit sends e, made by request r, to the sink.
func (g *Registry) emit(r *http.Request, e Event) {
	e.Request = r
	g.events.Emit(r.Context(), e)
}

// emitManifest sends one event per tag of a manifest write, or one
// without a tag when it was pushed by digest.
func (g *Registry) emitManifest(r *http.Request, action EventAction, repo string, d digest.Digest, mediaType string, size int, tags []string) {
	e := Event{Action: action, Kind: EventManifest, Repository: repo, Digest: d, MediaType: mediaType, Size: int64(size)}
	if len(tags) == 0 {
		g.emit(r, e)
	}
	for _, t := range tags {
		e.Tag = t
		g.emit(r, e)
	}
}

// emitPull sends the pull of a manifest served by GET; a HEAD is no pull
// (it only checks whether the client is up to date).
func (g *Registry) emitPull(r *http.Request, repo string, d digest.Digest, mediaType string, size int, tag string) {
	if r.Method != http.MethodGet {
		return
	}
	g.emit(r, Event{Action: EventPull, Kind: EventManifest, Repository: repo, Digest: d, MediaType: mediaType, Size: int64(size), Tag: tag})
}

// emitBlob sends a blob push, mount or delete.
func (g *Registry) emitBlob(r *http.Request, action EventAction, repo, from string, d digest.Digest, size int64) {
	g.emit(r, Event{Action: action, Kind: EventBlob, Repository: repo, FromRepository: from, Digest: d, Size: size})
}

// gcDeleted turns GC's deletions into delete events without a request.
func (g *Registry) gcDeleted(ctx context.Context, d gc.Deletion) {
	kind := EventManifest
	if d.Kind == gc.DeletedLink {
		kind = EventBlob
	}
	g.events.Emit(ctx, Event{Action: EventDelete, Kind: kind, Repository: d.Repository, Digest: d.Digest})
}

// emitDelete sends the deletion of a tag or of a manifest.
func (g *Registry) emitDelete(r *http.Request, repo string, ref Reference) {
	if ref.Tag != "" {
		g.emit(r, Event{Action: EventDelete, Kind: EventTag, Repository: repo, Tag: ref.Tag})
		return
	}
	g.emit(r, Event{Action: EventDelete, Kind: EventManifest, Repository: repo, Digest: ref.Digest})
}
