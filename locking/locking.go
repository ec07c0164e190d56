// Package locking holds the short-lived state that replicas share: leases with
// fencing tokens, GC pins, and upload-session records. Each interface has a
// Redis implementation (locking/redis) for fleets and an in-process one
// (locking/memory) for a single machine; both pass locking/lockingtest.
//
// Locks are per key (an upload ID, a digest, "gc"), never per store.
package locking

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

var (
	// ErrHeld: another holder has the lease.
	ErrHeld = errors.New("locking: lease held by another holder")
	// ErrLost: the caller's lease expired or was taken over; its fencing
	// token is stale and whatever it guarded must not be written.
	ErrLost = errors.New("locking: lease lost")
	// ErrNotFound: no session record with that ID (never created, deleted
	// or expired).
	ErrNotFound = errors.New("locking: not found")
	// ErrExists: Create found a record with that ID already.
	ErrExists = errors.New("locking: already exists")
	// ErrDeleting: Pin found the digest claimed by a running GC; the caller
	// must treat the blob as unknown.
	ErrDeleting = errors.New("locking: digest is being deleted")
	// ErrUnavailable: the backing service (Redis) cannot be reached. The
	// registry answers 503 for writes that need it.
	ErrUnavailable = errors.New("locking: backend unavailable")
)

// RefusedError is PinAll's answer when GC has claimed some of its keys;
// errors.Is(err, ErrDeleting) holds. Every key it does not name was pinned.
type RefusedError struct {
	// Keys are the claimed keys, in the order they were passed.
	Keys []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("locking: %s being deleted", strings.Join(e.Keys, ", "))
}

// Unwrap makes errors.Is(err, ErrDeleting) true.
func (e *RefusedError) Unwrap() error { return ErrDeleting }

// Refused reports whether key is one of the claimed keys.
func (e *RefusedError) Refused(key string) bool { return slices.Contains(e.Keys, key) }

// Lease is proof of holding a key until Expires. Token increases strictly
// with every acquisition of the same key, so a stale holder can be told
// apart from the current one (fencing).
type Lease struct {
	Key     string
	Token   uint64
	Holder  string // random per acquisition
	Expires time.Time
}

// Leases grants exclusive, expiring ownership of a key.
type Leases interface {
	// Acquire takes the lease on key for ttl, or fails with ErrHeld.
	Acquire(ctx context.Context, key string, ttl time.Duration) (Lease, error)
	// Renew extends a held lease; ErrLost if it expired or changed hands.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Release gives the lease up; only the holder can. ErrLost otherwise.
	Release(ctx context.Context, l Lease) error
}

// Pins implement the online-GC safety protocol (design.md §6) per digest:
// Pin and Claim are atomic against each other.
type Pins interface {
	// Pin records that a client was just told the digest exists (or relies
	// on it). It fails with ErrDeleting if GC has claimed the digest.
	Pin(ctx context.Context, digest string) error
	// PinAll pins each key as Pin does, all in one round trip to the
	// backend: a pull relies on two keys (the repository's link and the
	// digest), and paying one round trip per key doubled the lock-store
	// latency of every small pull. Each key is pinned atomically against
	// its own claim, which is all the protocol needs; the keys are not one
	// transaction, so a claimed key does not keep the others from being
	// pinned (an extra pin only keeps an object one grace period longer).
	// If any key is claimed the error is a *RefusedError naming them.
	PinAll(ctx context.Context, keys ...string) error
	// Claim marks the digest as being deleted unless it was pinned at or
	// after notPinnedSince; it reports whether the claim was taken.
	Claim(ctx context.Context, digest string, notPinnedSince time.Time, ttl time.Duration) (bool, error)
	// Unclaim clears the deleting mark after GC deleted (or gave up on) the digest.
	Unclaim(ctx context.Context, digest string) error
	// ClaimMany is Claim of each digest, in one round trip where the store
	// allows (GC claims a listing page at a time): claimed[i] reports
	// digests[i]. Each claim is atomic against the pins of its digest, as
	// Claim; the batch as a whole is not. On error, any of the digests may
	// be claimed, and the caller unclaims them all (or lets the ttl).
	ClaimMany(ctx context.Context, digests []string, notPinnedSince time.Time, ttl time.Duration) (claimed []bool, err error)
	// UnclaimMany is Unclaim of each digest, in one round trip where the
	// store allows.
	UnclaimMany(ctx context.Context, digests []string) error
}

// Sessions stores opaque upload-session records with an expiry. Updates are
// fenced by the lease on the same ID, so a writer whose lease was taken over
// cannot overwrite the new holder's progress.
type Sessions interface {
	// Create stores a new record; ErrExists if the ID is taken.
	Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error
	// Get returns the record or ErrNotFound.
	Get(ctx context.Context, id string) ([]byte, error)
	// Update replaces the record if lease is the current lease on the ID
	// (key SessionLeaseKey(id)); ErrLost otherwise, ErrNotFound if gone.
	Update(ctx context.Context, lease Lease, id string, rec []byte, ttl time.Duration) error
	// Delete removes the record; deleting a missing one is not an error.
	Delete(ctx context.Context, id string) error
}

// SessionLeaseKey is the lease key that guards the session with this ID.
func SessionLeaseKey(id string) string { return "upload:" + id }

// Store bundles the three roles; a backend provides all of them.
type Store interface {
	Leases
	Pins
	Sessions
	Close() error
}
