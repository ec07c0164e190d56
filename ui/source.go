package ui

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stratus-registry/stratus/registry"
)

// The UI reads the registry through these small interfaces, so a page
// depends on what it shows and tests can stand in for any one of them.

// ErrNotFound: the repository, tag, manifest or blob does not exist (or
// the repository does not link the blob).
var ErrNotFound = errors.New("not found")

// ErrTooLarge: a blob is over the size the UI reads.
var ErrTooLarge = errors.New("blob too large to show")

// Catalog lists repository names in order.
type Catalog interface {
	// Repositories lists up to n names starting with prefix after last;
	// more reports that names follow.
	Repositories(ctx context.Context, prefix, last string, n int) (names []string, more bool, err error)
}

// Tag is one tag of a repository.
type Tag struct {
	Name   string
	Digest digest.Digest
	// Pushed is when the tag object was last written.
	Pushed time.Time
}

// Tags lists and resolves a repository's tags.
type Tags interface {
	Tags(ctx context.Context, repo, last string, n int) (tags []Tag, more bool, err error)
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
}

// Manifest is a stored manifest, its bytes exactly as pushed.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Body      []byte
}

// Content reads manifests and small blobs (configs, reports).
type Content interface {
	Manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error)
	// Blob reads a blob the repository links, ErrTooLarge when it is over
	// max bytes (nothing is read then).
	Blob(ctx context.Context, repo string, d digest.Digest, max int64) ([]byte, error)
}

// Referrers lists the manifests whose subject is a manifest.
type Referrers interface {
	// Referrers returns up to max descriptors; more reports that others
	// were left out.
	Referrers(ctx context.Context, repo string, subject digest.Digest, max int) (refs []v1.Descriptor, more bool, err error)
}

// Source is everything the pages read about content.
type Source interface {
	Catalog
	Tags
	Content
	Referrers
}

// GCReports gives the last GC pass's report; storage.ErrNotFound (or
// ErrNotFound) before any pass has run.
type GCReports interface {
	LastGCReport(ctx context.Context) (*registry.GCReport, error)
}

// Health is the replica's readiness as /readyz answers it.
type Health interface {
	Ready(ctx context.Context) (ok bool, detail string)
}

// WebhookQueue reports how many webhook deliveries wait, by endpoint
// name; *notifications.Notifier is one.
type WebhookQueue interface {
	Depth(ctx context.Context) (map[string]int64, error)
}

// Access is the auth the UI shares with the API; *auth.Authorizer is one.
type Access interface {
	Authenticate(ctx context.Context, user, password string) error
	// ChecksPasswords is false when no password can be checked here
	// (only an external token issuer is configured).
	ChecksPasswords() bool
	CanUser(ctx context.Context, user, repo string, action registry.Action) bool
	// WithSessionUser makes requests built on ctx the user's, for the
	// registry's own authorization, audit and events.
	WithSessionUser(ctx context.Context, user string) context.Context
}
