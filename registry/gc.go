package registry

import (
	"context"

	"github.com/stratus-registry/stratus/registry/gc"
)

// GCReport is what one garbage-collection pass did (registry/gc).
type GCReport = gc.Report

// GCDecision explains one object's fate in a dry run.
type GCDecision = gc.Decision

// GCPolicyState records the settings a pass ran with.
type GCPolicyState = gc.PolicyState

// GCStorage is the live content by repository a pass's mark found.
type GCStorage = gc.Storage

// GCRepoStorage is one repository's live content.
type GCRepoStorage = gc.RepoStorage

// ErrGCRunning: another replica holds the GC lease.
var ErrGCRunning = gc.ErrRunning

// collector is the GC over this registry's content, with the current
// configuration.
func (g *Registry) collector() (*gc.Collector, error) {
	return gc.New(g.gcContent, g.locks, gc.Config{
		Grace: g.cfg.GC.Grace, Untagged: g.cfg.GC.Untagged, UntaggedAge: g.cfg.GC.UntaggedAge,
		KeepReferrers: *g.cfg.GC.KeepReferrers, Concurrency: g.cfg.GC.Concurrency,
		Interval: g.cfg.GC.Interval, UploadTTL: g.cfg.UploadTTL, OnDelete: g.gcDeleted,
		Retention: g.retention, PinTTL: g.pinTTL, MarkCache: g.markCache,
	}, g.logger, g.recordGC)
}

// RunGC runs one garbage-collection pass. With dryRun it deletes nothing
// and lists what it would delete, and why.
func (g *Registry) RunGC(ctx context.Context, dryRun bool) (*GCReport, error) {
	c, err := g.collector()
	if err != nil {
		return nil, err
	}
	return c.Run(ctx, dryRun)
}

// LastGCReport returns the report of the last pass, or storage.ErrNotFound.
func (g *Registry) LastGCReport(ctx context.Context) (*GCReport, error) {
	c, err := g.collector()
	if err != nil {
		return nil, err
	}
	return c.LastReport(ctx)
}

// RunGCLoop runs a pass every gc.interval (jittered by up to 10%) until
// ctx ends; see gc.Collector.RunLoop.
func (g *Registry) RunGCLoop(ctx context.Context) {
	c, err := g.collector()
	if err != nil {
		g.logger.Error("gc: cannot run the background loop", "err", err)
		return
	}
	c.RunLoop(ctx)
}
