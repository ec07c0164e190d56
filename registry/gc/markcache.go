package gc

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// MarkCache remembers, from one pass to the next, where each tag pointed
// and what each manifest references, keyed by the object's key and the
// version its listing showed. A steady pass then lists tags and manifests
// but reads only those written since (docs/architecture.md, "The mark
// remembers what it read").
//
// An entry is only as good as the version it is filed under, and a read
// comes after the listing: the object may have been rewritten in between,
// and on a store whose ETag is a hash of the content (S3) a second rewrite
// back to the listed content brings the listed ETag back. So an entry is
// made only for an object whose listed modification time is older than
// the pass's start by minCacheAge: any rewrite after the listing has a
// later modification time, and a later listing no longer matches.
//
// It holds at most its bound of entries (twice that while a pass that
// reads everything anew runs); each pass keeps only the entries it used or
// made, so tags and manifests that went away leave it. An entry costs
// about 300 bytes, plus about 100 per reference of a manifest.
type MarkCache struct {
	max int

	mu   sync.Mutex
	prev map[string]markEntry // what the last complete pass used or made
	next map[string]markEntry // what this pass used or made
}

// minCacheAge is how much older than the pass an object must be to be
// cached. It covers the modification time's resolution (a second on S3)
// and the skew between the store's clock and the lock store's, which the
// pass's start comes from.
const minCacheAge = 30 * time.Second

type markEntry struct {
	version content.Version
	// target is where a tag points.
	target digest.Digest
	// refs and size are a manifest's references and body length.
	refs []content.Ref
	size int64
}

// NewMarkCache returns a cache of at most max entries; max 0 disables it
// (a nil *MarkCache caches nothing too).
func NewMarkCache(max int) *MarkCache {
	if max <= 0 {
		return nil
	}
	return &MarkCache{max: max}
}

func (c *MarkCache) begin() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = map[string]markEntry{}
}

// end ends a pass: a complete one's entries replace the last pass's; a
// failed pass may have stopped before most objects, so its entries are
// added to the last pass's instead, up to the bound.
func (c *MarkCache) end(complete bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !complete {
		for k, e := range c.prev {
			if len(c.next) >= c.max {
				break
			}
			if _, ok := c.next[k]; !ok {
				c.next[k] = e
			}
		}
	}
	c.prev, c.next = c.next, nil
}

// lookup returns the entry for key if it was made for exactly version v,
// and keeps it for the next pass.
func (c *MarkCache) lookup(key string, v content.Version) (markEntry, bool) {
	if c == nil || v.ETag == "" {
		return markEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.next[key]
	if !ok {
		// Moved, not copied: a pass holds each entry once, so the cache
		// stays near its bound while the pass runs.
		if e, ok = c.prev[key]; ok {
			delete(c.prev, key)
		}
	}
	if !ok || !sameVersion(e.version, v) {
		return markEntry{}, false
	}
	c.keep(key, e)
	return e, true
}

// store files e under key for the version its listing showed, if the
// object is old enough (see MarkCache) and there is room.
func (c *MarkCache) store(key string, passStart time.Time, e markEntry) {
	if c == nil || e.version.ETag == "" || !e.version.ModTime.Before(passStart.Add(-minCacheAge)) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep(key, e)
}

func (c *MarkCache) keep(key string, e markEntry) {
	if c.next == nil {
		return // not inside a pass
	}
	if _, ok := c.next[key]; ok || len(c.next) < c.max {
		c.next[key] = e
	}
}

func sameVersion(a, b content.Version) bool {
	return a.ETag == b.ETag && a.Size == b.Size && a.ModTime.Equal(b.ModTime)
}

func tagCacheKey(repo, tag string) string { return repo + "\x00t\x00" + tag }

func manifestCacheKey(repo string, d digest.Digest) string {
	return repo + "\x00m\x00" + d.String()
}
