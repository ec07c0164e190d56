// Package gc is Stratus's online garbage collector (design.md §6,
// docs/architecture.md "Garbage collection"). One pass, under a
// cluster-wide lease:
//
//  1. per repository: mark the manifests reachable from tags (plus
//     untagged ones per policy), take the closure over index children and
//     referrers to the blobs they reference, then sweep unreachable
//     manifests and links, and drop the repository when nothing is left;
//  2. globally: blob records nobody marked, orphaned data objects, stale
//     multipart writes.
//
// Every deletion goes through a claim of exactly what it removes (the
// content store's Targets): the claim fails if a request pinned that scope
// since markStart - grace, and a pin fails while the claim holds. So a
// request either keeps the object alive or learns it is gone; it never
// acknowledges something GC then removes. The collector reads and deletes
// only through registry/content and builds no storage key.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
)

// ErrRunning: another replica holds the GC lease.
var ErrRunning = errors.New("gc: another garbage collection is running")

const (
	// LeaseKey is the cluster-wide lease one pass holds.
	LeaseKey = "gc"
	leaseTTL = 30 * time.Second
	// ClaimTTL bounds how long a crashed collector's claims block pins
	// (and how long one claim's deletions may take).
	ClaimTTL = 5 * time.Minute
)

// Locks is what the collector needs of the lock store: the lease, and the
// session records (a data object whose upload session exists is kept).
type Locks interface {
	Acquire(ctx context.Context, key string, ttl time.Duration) (locking.Lease, error)
	Renew(ctx context.Context, l locking.Lease, ttl time.Duration) (locking.Lease, error)
	Release(ctx context.Context, l locking.Lease) error
	Get(ctx context.Context, id string) ([]byte, error)
}

// clock is implemented by lock stores that can tell the shared time (Redis
// TIME), so that every replica's pins and this pass's markStart compare on
// one clock.
type clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// Config is what a pass runs with (registry.gc and registry.upload_ttl).
type Config struct {
	Grace         time.Duration
	Untagged      string // "keep" or "delete"
	UntaggedAge   time.Duration
	KeepReferrers bool
	Concurrency   int
	// Interval between background passes; 0: no background loop.
	Interval time.Duration
	// UploadTTL is how long an idle upload session lives.
	UploadTTL time.Duration
	// OnDelete, if set, is told of every manifest, repository link and
	// tag a pass deleted (not in dry runs), after the deletion: webhooks.
	OnDelete func(context.Context, Deletion)
	// Retention, if set, deletes tags by the retention rules before each
	// repository is marked (see retention.go).
	Retention Retention
	// StorageRepositories bounds the repositories Report.Storage lists by
	// name (the rest are summed); 0: 1000.
	StorageRepositories int
	// PinTTL is how long the lock store remembers a pin (0: forever). A
	// claim is only safe while every pin made since the cutoff is still
	// remembered, so a pass that runs longer than PinTTL - Grace (less
	// ClaimTTL, the time one claim's deletions may take) stops claiming:
	// a slow store or a low max_rate then costs a failed pass, never an
	// object a forgotten pin should have kept.
	PinTTL time.Duration
	// MarkCache, if set, carries what the mark read from one pass to the
	// next; it must outlive the Collector (one per registry).
	MarkCache *MarkCache
}

// ErrPassTooLong: the pass ran so long that pins made since its cutoff may
// have expired; it stopped before claiming anything more.
var ErrPassTooLong = errors.New("gc: the pass outlived the pin lifetime (redis.pin_ttl - registry.gc.grace); it stopped claiming")

// Deletion is one object a pass deleted in a repository.
type Deletion struct {
	Kind       DeletedKind
	Repository string
	Digest     digest.Digest
	// Tag is the deleted tag (DeletedTag; Digest is where it pointed).
	Tag string
}

// DeletedKind is what a Deletion removed.
type DeletedKind string

const (
	DeletedManifest DeletedKind = "manifest"
	// DeletedLink: the repository no longer serves the blob (the global
	// blob is deleted once no repository links it; that has no event).
	DeletedLink DeletedKind = "link"
	// DeletedTag: retention deleted a tag.
	DeletedTag DeletedKind = "tag"
)

// deleted reports deletions to OnDelete.
func (p *pass) deleted(ctx context.Context, kind DeletedKind, repo string, ts []content.Target) {
	if p.cfg.OnDelete == nil || p.dryRun {
		return
	}
	for _, t := range ts {
		p.cfg.OnDelete(ctx, Deletion{Kind: kind, Repository: repo, Digest: t.Digest})
	}
}

// Collector runs passes over one content store.
type Collector struct {
	store  *content.Store
	locks  Locks
	cfg    Config
	logger *slog.Logger
	// onPass, if set, is told of every pass (metrics).
	onPass func(*Report, error)
}

// New returns a collector. onPass may be nil.
func New(store *content.Store, locks Locks, cfg Config, logger *slog.Logger, onPass func(*Report, error)) (*Collector, error) {
	if store == nil || locks == nil {
		return nil, errors.New("gc: a content store and a lock store are required")
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("gc: concurrency %d is below 1", cfg.Concurrency)
	}
	if cfg.StorageRepositories < 0 {
		return nil, fmt.Errorf("gc: storage repositories bound %d is negative", cfg.StorageRepositories)
	}
	if cfg.PinTTL != 0 && cfg.PinTTL-cfg.Grace <= ClaimTTL {
		return nil, fmt.Errorf("gc: the pin lifetime %s must exceed the grace period %s by more than %s", cfg.PinTTL, cfg.Grace, ClaimTTL)
	}
	if cfg.Untagged != "keep" && cfg.Untagged != "delete" {
		return nil, fmt.Errorf("gc: untagged policy %q is not keep or delete", cfg.Untagged)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{store: store, locks: locks, cfg: cfg, logger: logger, onPass: onPass}, nil
}

// pass is the state of one GC pass.
type pass struct {
	*Collector
	dryRun bool
	// cutoff = markStart - grace: pins and writes after it protect.
	markStart, cutoff time.Time
	// started is when the pass began, on this process's monotonic clock
	// (claimsAllowed measures the pass against the pin lifetime).
	started time.Time

	mu     sync.Mutex
	report *Report
	// lastProgress is when progress was last logged (long passes).
	lastProgress time.Time
	live         map[digest.Digest]struct{} // blobs referenced by live manifests
	// records holds the digests of the blob records the sweep kept; the
	// orphan sweep reads the data index against it.
	records map[digest.Digest]struct{}
	// collected holds the digests whose records the sweep deleted (or
	// would, in a dry run): their data objects go in the orphan sweep.
	collected map[digest.Digest]struct{}
	// slots bound the pass's concurrent store and lock requests (see
	// fanOut); repositories are collected concurrently too.
	slots chan struct{}
	// storage tallies each repository's live content (storage.go).
	storage *storageTally
}

// Run runs one pass. With dryRun it deletes nothing and lists what it
// would delete, and why.
func (c *Collector) Run(ctx context.Context, dryRun bool) (*Report, error) {
	ctx, release, err := c.holdLease(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	now := time.Now()
	if cl, ok := c.locks.(clock); ok {
		if now, err = cl.Now(ctx); err != nil {
			return nil, fmt.Errorf("gc clock: %w", err)
		}
	}
	p := &pass{
		Collector: c, dryRun: dryRun,
		markStart: now, cutoff: now.Add(-c.cfg.Grace), started: time.Now(), lastProgress: time.Now(),
		live: map[digest.Digest]struct{}{}, records: map[digest.Digest]struct{}{},
		collected: map[digest.Digest]struct{}{},
		slots:     make(chan struct{}, c.cfg.Concurrency),
		storage:   newStorageTally(c.logger),
		report: &Report{Started: now.UTC(), DryRun: dryRun, Policy: PolicyState{
			GraceSeconds: c.cfg.Grace.Seconds(), Untagged: c.cfg.Untagged, KeepReferrers: c.cfg.KeepReferrers,
		}},
	}
	c.logger.Info("gc: pass starting", "dry_run", dryRun, "grace", c.cfg.Grace, "untagged", c.cfg.Untagged)
	c.cfg.MarkCache.begin()
	runErr := p.run(ctx)
	c.cfg.MarkCache.end(runErr == nil)
	if cause := context.Cause(ctx); runErr != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		runErr = fmt.Errorf("%w: %w", cause, runErr)
	}
	r := p.report
	r.Finished = time.Now().UTC()
	r.DurationSeconds = time.Since(now).Seconds()
	if runErr != nil {
		r.Errors = append(r.Errors, runErr.Error())
	}
	if c.onPass != nil {
		c.onPass(r, runErr)
	}
	if err := c.saveReport(context.WithoutCancel(ctx), r); err != nil {
		c.logger.Warn("gc: saving report", "err", err)
	}
	c.logger.Info("gc: pass finished", "dry_run", dryRun, "took", time.Since(now),
		"repositories", r.Repositories, "manifests_deleted", r.ManifestsDeleted, "blobs_deleted", r.BlobsDeleted,
		"bytes_reclaimed", r.BytesReclaimed, "links_deleted", r.LinksDeleted, "orphans_deleted", r.OrphansDeleted,
		"uploads_aborted", r.UploadsAborted, "kept_by_pin", r.KeptByPin, "err", runErr)
	return r, runErr
}

func (p *pass) cacheHit() {
	p.mu.Lock()
	p.report.MarkCacheHits++
	p.mu.Unlock()
}

// claimsAllowed fails once the pass has run so long that a pin made at
// its cutoff may have expired (Config.PinTTL); every claim asks first.
func (p *pass) claimsAllowed() error {
	if p.cfg.PinTTL != 0 && time.Since(p.started) > p.cfg.PinTTL-p.cfg.Grace-ClaimTTL {
		return ErrPassTooLong
	}
	return nil
}

// holdLease takes the GC lease and renews it until release is called. The
// returned context is cancelled when a renewal fails: another replica may
// take over, so this one stops deleting at once.
func (c *Collector) holdLease(ctx context.Context) (context.Context, func(), error) {
	lease, err := c.locks.Acquire(ctx, LeaseKey, leaseTTL)
	if errors.Is(err, locking.ErrHeld) {
		return nil, nil, ErrRunning
	}
	if err != nil {
		return nil, nil, fmt.Errorf("gc lease: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	renewDone := make(chan struct{})
	stopRenew := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stopRenew:
				return
			case <-t.C:
				l, err := c.locks.Renew(ctx, lease, leaseTTL)
				if err != nil {
					cancel(fmt.Errorf("gc lease lost: %w", err))
					return
				}
				lease = l
			}
		}
	}()
	release := func() {
		close(stopRenew)
		<-renewDone
		if err := c.locks.Release(context.WithoutCancel(ctx), lease); err != nil && !errors.Is(err, locking.ErrLost) {
			c.logger.Warn("gc: releasing lease", "err", err)
		}
		cancel(nil)
	}
	return ctx, release, nil
}

func (p *pass) run(ctx context.Context) error {
	start := time.Now()
	defer func() {
		p.report.SweepSeconds = time.Since(start).Seconds() - p.report.MarkSeconds
	}()
	err := p.collectRepos(ctx)
	p.report.MarkSeconds = time.Since(start).Seconds()
	if err != nil {
		return err
	}
	p.report.Storage = p.storage.report(p.storageRepositories())
	var index dataIndex
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := p.sweepBlobs(gctx); err != nil {
			return fmt.Errorf("blobs: %w", err)
		}
		return nil
	})
	g.Go(func() (err error) {
		if index, err = p.listDataIndex(gctx); err != nil {
			return fmt.Errorf("orphaned data: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if err := p.sweepOrphans(ctx, index); err != nil {
		return fmt.Errorf("orphaned data: %w", err)
	}
	// A session expires after upload_ttl without activity; a write idle
	// for longer (plus grace) has no session left to resume it.
	n, _, err := p.store.AbortStaleUploads(ctx, p.cutoff.Add(-p.cfg.UploadTTL), p.dryRun)
	p.mu.Lock()
	p.report.UploadsAborted += n
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("stale uploads: %w", err)
	}
	return nil
}

// collectRepos collects the repositories of the catalog, up to
// Concurrency at a time: a repository's mark is a chain of small,
// dependent requests (list, read tags, read manifests, list links), so
// one at a time leaves the store idle while each answers. The catalog is
// listed a page ahead of the work at most (errgroup.Go waits for a free
// slot), so memory stays bounded by the repositories in flight.
func (p *pass) collectRepos(ctx context.Context) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(p.cfg.Concurrency)
	err := p.store.EachRepository(ectx, func(repo *content.Repository) error {
		if err := ectx.Err(); err != nil {
			return err
		}
		eg.Go(func() error {
			if err := p.collectRepo(ectx, repo); err != nil {
				return fmt.Errorf("repository %s: %w", repo.Name(), err)
			}
			p.progress("mark", "repository", repo.Name())
			return nil
		})
		return nil
	})
	if werr := eg.Wait(); werr != nil {
		return werr
	}
	return err
}

// RunLoop runs a pass every Interval (jittered by up to 10%) until ctx
// ends. Every replica runs the loop; the lease lets one pass at a time
// proceed, and a replica that finds it held just waits for its next turn.
func (c *Collector) RunLoop(ctx context.Context) {
	if c.cfg.Interval <= 0 {
		return
	}
	for {
		wait := c.cfg.Interval + time.Duration(rand.Int64N(int64(c.cfg.Interval)/10+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		_, err := c.Run(ctx, false)
		switch {
		case err == nil, errors.Is(err, ErrRunning), ctx.Err() != nil:
		default:
			c.logger.Warn("gc: pass failed; next one at the next interval", "err", err)
		}
	}
}

// progressEvery is how often a long pass logs where it is.
const progressEvery = 30 * time.Second

func (p *pass) progress(phase string, attrs ...any) {
	p.mu.Lock()
	if time.Since(p.lastProgress) < progressEvery {
		p.mu.Unlock()
		return
	}
	p.lastProgress = time.Now()
	r := *p.report
	p.mu.Unlock()
	p.logger.Info("gc: progress", append([]any{"phase", phase, "repositories", r.Repositories,
		"manifests_examined", r.ManifestsExamined, "manifests_deleted", r.ManifestsDeleted,
		"blobs_examined", r.BlobsExamined, "blobs_deleted", r.BlobsDeleted, "bytes_reclaimed", r.BytesReclaimed,
		"kept_by_pin", r.KeptByPin}, attrs...)...)
}

func (p *pass) decide(object, action, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dryRun && len(p.report.Decisions) < maxDecisions {
		p.report.Decisions = append(p.report.Decisions, Decision{Object: object, Action: action, Reason: reason})
	}
}

func (p *pass) keptYoung(object string) {
	p.mu.Lock()
	p.report.KeptYoung++
	p.mu.Unlock()
	p.decide(object, "keep", "younger than the grace period")
}
