package registry

import (
	"context"
	"errors"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// The upload reaper removes what abandoned upload sessions leave in the
// store (a staged data file, an S3 multipart upload and its tail) when no
// background GC does it. GC passes reap too; this loop exists so that the
// embedded default, where GC is off and a separate `gc run` cannot see the
// server's in-process pins, still cleans up after itself. Reaping needs no
// pins: a write idle for longer than upload_ttl has no session left that
// could resume it.

const (
	reaperLeaseKey = "upload-reaper"
	// reaperMargin is added to upload_ttl, so that a session saved just
	// before it expired is never reaped while a request is still on it.
	reaperMargin = time.Minute
)

// reapInterval is how often the reaper runs: often enough that abandoned
// data does not pile up for much longer than upload_ttl.
func (g *Registry) reapInterval() time.Duration {
	return min(max(g.cfg.UploadTTL/4, time.Second), time.Hour)
}

// RunUploadReaper reaps abandoned uploads every reapInterval until ctx
// ends. It does nothing when background GC is on (GC reaps) or the driver
// keeps no state for abandoned writes.
func (g *Registry) RunUploadReaper(ctx context.Context) {
	if g.cfg.GC.Interval > 0 {
		return
	}
	if !g.content.CanReapUploads() {
		return
	}
	t := time.NewTicker(g.reapInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := g.ReapUploads(ctx); err != nil && ctx.Err() == nil {
			g.logger.Warn("upload reaper: pass failed; next one at the next interval", "err", err)
		}
	}
}

// ReapUploads aborts every multipart write idle for longer than upload_ttl
// plus a margin. The lease is kept until it expires, just before the next
// interval, so that of N replicas one reaps per interval.
func (g *Registry) ReapUploads(ctx context.Context) (int, error) {
	if !g.content.CanReapUploads() {
		return 0, nil
	}
	_, err := g.locks.Acquire(ctx, reaperLeaseKey, g.reapInterval()*9/10)
	if errors.Is(err, locking.ErrHeld) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _, err := g.content.AbortStaleUploads(ctx, time.Now().Add(-g.cfg.UploadTTL-reaperMargin), false)
	if n > 0 {
		g.logger.Info("upload reaper: aborted abandoned uploads", "count", n)
	}
	return n, err
}
