package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
)

// Link stamps let a process remember that a repository links a blob
// without asking the object store again on every pull, and still never
// serve a link another replica or GC deleted (docs/architecture.md, "A
// pull checks a remembered link in the lock store").
//
// Each repository has one stamp in the lock store: a random value that
// every deletion of one of its links replaces, before it deletes, by a
// "changing" value that lives for stampChangeHold. A process remembers a
// link together with the live stamp it read before it read the link, and
// uses the memory only while the pin round trip of the pull finds that
// same stamp. A stamp that is lost (Redis restarted, evicted or expired
// it) comes back as a new random value, so a loss costs one object-store
// read per remembered link, never a stale answer.

const (
	stampPrefix = "linkstamp/"
	// stampLive and stampChanging start a stamp's value.
	stampLive     = 'L'
	stampChanging = 'D'
	// stampTTL is how long a live stamp lives; its expiry only makes the
	// links remembered under it be read again. It also bounds how long a
	// link deleted behind Stratus's back (not through Unlink or GC) can
	// still be served from memory.
	stampTTL = time.Hour
	// stampChangeHold is how long a deletion keeps a repository's links
	// from being remembered. A deletion must be done well inside it (see
	// stampChangeDeadline): a process that read the stamp after the hold
	// ended and the link before the delete landed would remember a link
	// that is gone.
	stampChangeHold = 2 * time.Minute
	// stampChangeDeadline bounds the link deletes of one change; a delete
	// request still in flight at the deadline has the rest of the hold to
	// land.
	stampChangeDeadline = 30 * time.Second
	// maxRememberedLinks bounds the links a process remembers (about 300
	// bytes each).
	maxRememberedLinks = 4096
	// changeAttempts bounds the replacements of a stamp a reader keeps
	// recreating (each attempt is two lock-store round trips).
	changeAttempts = 3
)

// stampStore is the part of the lock store stamps live in: the session
// records of locking.Sessions, under IDs no upload uses (upload IDs are
// 32 hex digits; a stamp ID has a slash).
type stampStore interface {
	Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error
	Get(ctx context.Context, id string) ([]byte, error)
	Delete(ctx context.Context, id string) error
}

// linkID names one repository's link of a digest in memory.
type linkID struct {
	repo string
	d    digest.Digest
}

type rememberedLink struct {
	stamp string
	blob  Blob
}

// links is what a process remembers of links, with the stamps that make
// the memory checkable.
type links struct {
	stamps stampStore // nil: nothing is remembered
	mu     sync.Mutex
	known  map[linkID]rememberedLink
}

func newLinks(pins Pins) *links {
	st, _ := pins.(stampStore)
	return &links{stamps: st, known: map[linkID]rememberedLink{}}
}

// LinkStampID is the lock-store record ID of repo's link stamp.
func LinkStampID(repo string) string { return stampPrefix + repo }

// stamp reads repo's stamp: "" when there is none (or nothing is
// remembered in this store).
func (l *links) stamp(ctx context.Context, repo string) (string, error) {
	if l.stamps == nil {
		return "", nil
	}
	rec, err := l.stamps.Get(ctx, LinkStampID(repo))
	if errors.Is(err, locking.ErrNotFound) {
		return "", nil
	}
	return string(rec), err
}

// isLive reports whether a stamp value is one a link may be remembered
// under (not none, and no deletion changing the repository's links).
func isLive(stamp string) bool { return stamp != "" && stamp[0] == stampLive }

// ensureStamp creates a live stamp for repo unless one (live or
// changing) exists. It is called only for a repository that was just
// written to or served from, so probes of unknown names leave no state.
func (l *links) ensureStamp(ctx context.Context, repo string) error {
	if l.stamps == nil {
		return nil
	}
	err := l.stamps.Create(ctx, LinkStampID(repo), newStamp(stampLive), stampTTL)
	if errors.Is(err, locking.ErrExists) {
		return nil
	}
	return err
}

// liveStamp is repo's stamp for a write that is about to create a link,
// the stamp created first when there is none; ok is false when no link
// may be remembered under it.
func (l *links) liveStamp(ctx context.Context, repo string) (string, bool) {
	if l.stamps == nil {
		return "", false
	}
	v, err := l.stamp(ctx, repo)
	if err == nil && v == "" {
		if l.ensureStamp(ctx, repo) != nil {
			return "", false
		}
		v, err = l.stamp(ctx, repo)
	}
	return v, err == nil && isLive(v)
}

// beginChange replaces repo's stamp by a changing one before a link of
// repo is deleted: every link remembered under the old stamp is then read
// again, and none is remembered until the hold ends. An error means the
// deletion must not go ahead.
func (l *links) beginChange(ctx context.Context, repo string) error {
	if l.stamps == nil {
		return nil
	}
	id := LinkStampID(repo)
	for range changeAttempts {
		if err := l.stamps.Delete(ctx, id); err != nil {
			return fmt.Errorf("link stamp of %s: %w", repo, err)
		}
		// A reader may create a live stamp between the two calls; the
		// create then fails and the loop replaces that stamp too.
		err := l.stamps.Create(ctx, id, newStamp(stampChanging), stampChangeHold)
		if !errors.Is(err, locking.ErrExists) {
			if err != nil {
				return fmt.Errorf("link stamp of %s: %w", repo, err)
			}
			return nil
		}
	}
	return fmt.Errorf("link stamp of %s: recreated by readers %d times in a row", repo, changeAttempts)
}

// endChange replaces repo's stamp once more after its links were
// deleted. Only a stamp lost during the deletion needs it (a reader then
// created a live one and may have remembered a link under it before the
// delete landed), so a failure here is logged, not returned: the delete
// is done.
func (l *links) endChange(ctx context.Context, repo string, logger *slog.Logger) {
	if err := l.beginChange(context.WithoutCancel(ctx), repo); err != nil {
		logger.Warn("replacing the link stamp after a link deletion failed", "repo", repo, "err", err)
	}
}

// deleteLinks runs del, which deletes links of repos, between the two
// replacements of their stamps (beginChange, endChange), all within
// stampChangeDeadline of the first replacement, since the change's hold
// runs from there. Without repos it runs del alone.
func (l *links) deleteLinks(ctx context.Context, repos []string, logger *slog.Logger, del func(context.Context) error) error {
	if len(repos) == 0 {
		return del(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, stampChangeDeadline)
	defer cancel()
	for _, repo := range repos {
		if err := l.beginChange(ctx, repo); err != nil {
			return err
		}
	}
	if err := del(ctx); err != nil {
		return err
	}
	for _, repo := range repos {
		l.endChange(ctx, repo, logger)
	}
	return nil
}

func (l *links) get(repo string, d digest.Digest) (rememberedLink, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.known[linkID{repo, d}]
	return e, ok
}

func (l *links) put(repo string, b Blob, stamp string) {
	if l.stamps == nil {
		return
	}
	id := linkID{repo, b.Digest}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.known[id]; !ok && len(l.known) >= maxRememberedLinks {
		for victim := range l.known { // map order: a random eviction
			delete(l.known, victim)
			break
		}
	}
	l.known[id] = rememberedLink{stamp: stamp, blob: b}
}

func (l *links) forget(repo string, d digest.Digest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.known, linkID{repo, d})
}

// newStamp is a fresh stamp value of the given kind: 16 random bytes, so
// that a stamp recreated after a loss never equals one remembered before.
func newStamp(kind byte) []byte {
	var b [16]byte
	rand.Read(b[:])
	return append([]byte{kind}, hex.EncodeToString(b[:])...)
}
