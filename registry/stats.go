package registry

import (
	"sync/atomic"
	"time"
)

// stats are the registry's counters, exported by Metrics. They live in the
// Registry value (no globals), so tests and several registries in one
// process never share them.
type stats struct {
	pinsRefused    atomic.Int64
	claimsRefused  atomic.Int64
	gcRuns         atomic.Int64
	gcFailures     atomic.Int64
	gcDeleted      atomic.Int64
	gcBytes        atomic.Int64
	gcLastDuration atomic.Int64 // nanoseconds
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
		PinsRefused:     g.stats.pinsRefused.Load(),
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
	g.stats.gcDeleted.Add(int64(r.ManifestsDeleted + r.BlobsDeleted + r.LinksDeleted + r.OrphansDeleted + r.UploadsAborted + r.ReposRemoved))
	g.stats.gcBytes.Add(r.BytesReclaimed)
	g.stats.gcLastDuration.Store(int64(r.DurationSeconds * float64(time.Second)))
}
