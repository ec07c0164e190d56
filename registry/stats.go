package registry

import (
	"sync"
	"sync/atomic"
	"time"
)

// stats are the registry's counters, exported by Metrics. They live in the
// Registry value (no globals), so tests and several registries in one
// process never share them.
type stats struct {
	claimsRefused  atomic.Int64
	gcRuns         atomic.Int64
	gcFailures     atomic.Int64
	gcDeleted      atomic.Int64
	gcBytes        atomic.Int64
	gcLastDuration atomic.Int64 // nanoseconds
	// storageFullAt is when a write last failed for lack of space (Unix
	// nanoseconds), for readiness.
	storageFullAt atomic.Int64
	// loggedCauses holds the misconfiguration causes already logged at
	// error level; bounded by maxLoggedCauses.
	loggedMu     sync.Mutex
	loggedCauses map[string]bool
}

// maxLoggedCauses bounds loggedCauses: past it, every cause is logged again
// rather than remembered, so memory stays bounded.
const maxLoggedCauses = 64

// firstOccurrence reports whether cause is new to this process.
func (g *Registry) firstOccurrence(cause string) bool {
	g.stats.loggedMu.Lock()
	defer g.stats.loggedMu.Unlock()
	if g.stats.loggedCauses[cause] {
		return false
	}
	if g.stats.loggedCauses == nil {
		g.stats.loggedCauses = map[string]bool{}
	}
	if len(g.stats.loggedCauses) < maxLoggedCauses {
		g.stats.loggedCauses[cause] = true
	}
	return true
}

// storageFullFor is how long after a write failed for lack of space the
// replica reports itself full.
const storageFullFor = 30 * time.Second

// StorageFull reports whether a write failed for lack of space recently.
func (g *Registry) StorageFull() bool {
	at := g.stats.storageFullAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < storageFullFor
}

// Metrics is a snapshot of the counters, for the /metrics endpoint.
type Metrics struct {
	PinsRefused     int64
	ClaimsRefused   int64
	GCRuns          int64
	GCFailures      int64
	GCObjectsDelete int64
	GCBytesReclaim  int64
	GCLastDuration  time.Duration
}

// Metrics returns the current counters.
func (g *Registry) Metrics() Metrics {
	return Metrics{
		PinsRefused:     g.content.PinsRefused(),
		ClaimsRefused:   g.stats.claimsRefused.Load(),
		GCRuns:          g.stats.gcRuns.Load(),
		GCFailures:      g.stats.gcFailures.Load(),
		GCObjectsDelete: g.stats.gcDeleted.Load(),
		GCBytesReclaim:  g.stats.gcBytes.Load(),
		GCLastDuration:  time.Duration(g.stats.gcLastDuration.Load()),
	}
}

func (g *Registry) recordGC(r *GCReport, err error) {
	g.stats.gcRuns.Add(1)
	if err != nil {
		g.stats.gcFailures.Add(1)
	}
	if r == nil || r.DryRun {
		return
	}
	g.stats.claimsRefused.Add(int64(r.KeptByPin))
	g.stats.gcDeleted.Add(int64(r.ManifestsDeleted + r.BlobsDeleted + r.LinksDeleted + r.TagsDeleted + r.OrphansDeleted + r.UploadsAborted + r.ReposRemoved))
	g.stats.gcBytes.Add(r.BytesReclaimed)
	g.stats.gcLastDuration.Store(int64(r.DurationSeconds * float64(time.Second)))
}
