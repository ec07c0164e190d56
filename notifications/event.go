// Package notifications queues registry events and delivers them to
// webhook endpoints, durably and at least once.
//
// Emit filters an event per endpoint and enqueues one entry per matching
// endpoint: in a Redis Stream per endpoint when Redis is configured (so
// every replica shares the queue and a replica's death loses nothing), or
// in a bounded in-process queue otherwise (lost on restart). Run delivers:
// per endpoint, one worker per replica reads its endpoint's stream through
// a consumer group, POSTs the event in the endpoint's format (the CNCF
// Distribution envelope or a CloudEvents 1.0 structured event), signs it
// with HMAC-SHA256, retries with exponential backoff and jitter until the
// event is older than max_age, and acknowledges only after a 2xx answer.
// docs/architecture.md ("Webhooks") explains the queue design.
package notifications

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Action is what happened to the target.
type Action string

const (
	ActionPush   Action = "push"
	ActionPull   Action = "pull"
	ActionDelete Action = "delete"
	ActionMount  Action = "mount"
)

// Kind is what the target is; the CloudEvents type is derived from the
// kind and the action.
type Kind string

const (
	KindManifest Kind = "manifest"
	KindBlob     Kind = "blob"
	KindTag      Kind = "tag"
)

// Event is one registry event, shaped like the CNCF Distribution
// notification so that registry:2 receivers decode it unchanged.
type Event struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    Action    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`
	Actor     Actor     `json:"actor"`
	Source    Source    `json:"source"`
}

// Target is the object the event is about.
type Target struct {
	MediaType  string        `json:"mediaType,omitempty"`
	Digest     digest.Digest `json:"digest,omitempty"`
	Size       int64         `json:"size,omitempty"`
	Length     int64         `json:"length,omitempty"`
	Repository string        `json:"repository"`
	// FromRepository is the source of a cross-repository mount.
	FromRepository string `json:"fromRepository,omitempty"`
	// URL fetches the target from the registry that emitted the event.
	URL string `json:"url,omitempty"`
	Tag string `json:"tag,omitempty"`
}

// Request describes the HTTP request behind the event; it is empty for
// deletions by garbage collection.
type Request struct {
	ID        string `json:"id,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"useragent,omitempty"`
}

// Actor is who caused the event: the authenticated user, or "stratus-gc"
// for garbage collection; empty for anonymous requests.
type Actor struct {
	Name string `json:"name,omitempty"`
}

// GCActor is the actor of deletions made by garbage collection.
const GCActor = "stratus-gc"

// Source is the replica that emitted the event.
type Source struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// queued is what a queue entry holds: the event and its kind (which the
// Distribution envelope has no field for).
type queued struct {
	Kind  Kind  `json:"kind"`
	Event Event `json:"event"`
}
