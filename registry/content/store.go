// Package content is Stratus's content store: blobs, manifests, tags,
// referrers and the catalog, laid out on a storage.Driver, with the GC
// pin/claim protocol (docs/architecture.md, "Garbage collection") at the
// points where it belongs. It knows nothing of HTTP: the registry's
// handlers, GC and later import/export and the proxy cache all work
// through it, and none of them builds storage keys.
//
// Store is the global, content-addressed view; Repository is the view of
// one repository, in which a blob is visible only through a link. Unlinking
// a blob from a repository and deleting the blob are therefore methods of
// different types and cannot be confused.
package content

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

// Pins is the part of the lock store the pin/claim protocol needs
// (locking.Pins has this shape; Redis and in-process implement it).
type Pins interface {
	Pin(ctx context.Context, key string) error
	Claim(ctx context.Context, key string, notPinnedSince time.Time, ttl time.Duration) (bool, error)
	Unclaim(ctx context.Context, key string) error
	ClaimMany(ctx context.Context, keys []string, notPinnedSince time.Time, ttl time.Duration) ([]bool, error)
	UnclaimMany(ctx context.Context, keys []string) error
}

// Hooks are called at the points of the pin/claim protocol where races
// matter, so tests can force interleavings between requests and GC.
type Hooks interface {
	AfterPin(key string, err error)
	AfterClaim(key string, claimed bool)
}

// Options tune a Store.
type Options struct {
	// MaxManifestSize bounds what a manifest read returns (and so what a
	// referrer record may hold).
	MaxManifestSize int64
	Logger          *slog.Logger
	// Hooks is nil outside tests.
	Hooks Hooks
}

// Store is the content store over one bucket.
type Store struct {
	driver      storage.Driver
	pins        Pins
	opts        Options
	logger      *slog.Logger
	pinsRefused atomic.Int64
	// dataKeys lets a whole-blob GET open the data while it reads the
	// link (earlyopen.go).
	dataKeys *dataKeys
	// links remembers links under their repository's stamp, so a pull
	// of a remembered link reads no link (linkstamps.go).
	links *links
}

// New returns the store over driver, pinning and claiming in pins.
func New(driver storage.Driver, pins Pins, opts Options) (*Store, error) {
	if driver == nil || pins == nil {
		return nil, errors.New("content: a driver and a pin store are required")
	}
	if opts.MaxManifestSize <= 0 {
		return nil, fmt.Errorf("content: MaxManifestSize must be positive, not %d", opts.MaxManifestSize)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{driver: driver, pins: pins, opts: opts, logger: logger, dataKeys: newDataKeys(), links: newLinks(pins)}, nil
}

// WithDriver returns a store over d, a wrapper of this store's driver,
// sharing this store's pins and options: GC paces its own requests this
// way (storage/pace) without slowing the requests the registry serves.
func (s *Store) WithDriver(d storage.Driver) *Store {
	return &Store{driver: d, pins: s.pins, opts: s.opts, logger: s.logger, dataKeys: newDataKeys(), links: newLinks(s.pins)}
}

// Repository returns the view of repository name; ErrNameInvalid unless
// name follows the spec's grammar.
func (s *Store) Repository(name string) (*Repository, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrNameInvalid, name)
	}
	return &Repository{s: s, name: name}, nil
}

// PinsRefused counts pins refused because GC was deleting their key.
func (s *Store) PinsRefused() int64 { return s.pinsRefused.Load() }

// Repository is the content of one repository.
type Repository struct {
	s    *Store
	name string
}

// Name is the repository's name.
func (r *Repository) Name() string { return r.name }

// Pins and claims (design.md §6) are scoped to what a deletion removes:
//   - the digest itself ("sha256:..."): only the sweep that deletes the
//     global blob record and its data claims it;
//   - a link or manifest key ("repos/<name>/_links/..."): GC claims the key
//     when it unlinks a blob from, or deletes a manifest in, one repository;
//   - a data key ("data/<id>"): the orphan sweep claims it.
// So unlinking a shared layer from one repository never makes it unknown in
// another. A request pins every scope it relies on.

// pin records that a client relies on key. A key that GC is deleting
// answers ErrBeingDeleted. When the lock store is down, reads go on
// unpinned (GC cannot run either); writes pass required and fail.
func (s *Store) pin(ctx context.Context, key string, required bool) error {
	err := s.pins.Pin(ctx, key)
	if s.opts.Hooks != nil {
		s.opts.Hooks.AfterPin(key, err)
	}
	if errors.Is(err, locking.ErrDeleting) {
		s.pinsRefused.Add(1)
		return fmt.Errorf("%w: %s", ErrBeingDeleted, key)
	}
	return s.pinFailed(key, err, required)
}

// pinFailed is the answer to a pin that failed other than by a claim:
// reads go on unpinned while the lock store is down, writes fail.
func (s *Store) pinFailed(key string, err error, required bool) error {
	switch {
	case err == nil:
		return nil
	case !required && !errors.Is(err, context.Canceled):
		s.logger.Warn("pin failed; serving the read anyway", "key", key, "err", err)
		return nil
	}
	return fmt.Errorf("pin %s: %w", key, err)
}

// PinDigest pins the global digest d for a write (an upload's commit): GC
// then keeps the blob record of d, or the pin fails with ErrBeingDeleted
// while GC removes an older copy.
func (s *Store) PinDigest(ctx context.Context, d digest.Digest) error {
	return s.pin(ctx, d.String(), true)
}

// PinData pins the data object of an upload; ErrDataBeingDeleted while
// GC's orphan sweep removes it.
func (s *Store) PinData(ctx context.Context, uploadID string) error {
	err := s.pin(ctx, DataKey(uploadID), true)
	if errors.Is(err, ErrBeingDeleted) {
		return fmt.Errorf("%w: upload %s", ErrDataBeingDeleted, uploadID)
	}
	return err
}

// PinBlob pins d as linked in this repository and globally: what a
// request relies on when it serves, mounts or references a blob here.
// A refused pin is ErrBlobUnknown: the blob is going away. Both pins go to
// the lock store together (pinAll), so a pull pays one round trip.
func (r *Repository) PinBlob(ctx context.Context, d digest.Digest, required bool) error {
	return unknownIfDeleting(r.s.pinAll(ctx, required, LinkKey(r.name, d), d.String()), ErrBlobUnknown, d)
}

// PinManifest pins manifest d of this repository (GC claims manifests per
// repository). A refused pin is ErrManifestUnknown.
func (r *Repository) PinManifest(ctx context.Context, d digest.Digest) error {
	return unknownIfDeleting(r.s.pin(ctx, ManifestKey(r.name, d), true), ErrManifestUnknown, d)
}

func unknownIfDeleting(err, unknown error, d digest.Digest) error {
	if errors.Is(err, ErrBeingDeleted) {
		return fmt.Errorf("%w: %s is being garbage-collected", unknown, d)
	}
	return err
}

// ValidName reports whether name matches the distribution spec's <name>
// grammar:
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//
// It is hand-written rather than a regexp so that it runs in linear time with
// no allocation on untrusted input, and so that the rule that no component
// starts with a separator (which the layout relies on: "_tags" can never be
// a name component) is explicit.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameLength {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

// MaxNameLength bounds repository names. The spec sets no limit; 255 keeps
// every storage key (prefix + name + digest) well under object-store limits.
const MaxNameLength = 255

func validComponent(c string) bool {
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if alnum(c[i]) {
			i++
			continue
		}
		// A separator run: ".", "_", "__" or one or more "-".
		j := i
		for j < len(c) && !alnum(c[j]) {
			j++
		}
		sep := c[i:j]
		switch {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func alnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

// ValidTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func ValidTag(tag string) bool {
	if tag == "" || len(tag) > 128 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		b := tag[i]
		ok := alnum(b) || b >= 'A' && b <= 'Z' || b == '_' || i > 0 && (b == '.' || b == '-')
		if !ok {
			return false
		}
	}
	return true
}
