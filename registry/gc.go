package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/storage"
)

// Online garbage collection (design.md §6, docs/architecture.md "Garbage
// collection"). One pass, under a cluster-wide lease:
//
//  1. mark: per repository, the manifests reachable from tags (plus
//     untagged ones per policy), their index children and referrers, and
//     every blob they reference;
//  2. sweep, per repository: unreachable manifests and links;
//  3. sweep, globally: blob records nobody marked, orphaned data objects,
//     stale multipart writes, empty repositories.
//
// Every deletion of something a request may rely on goes through a claim:
// the claim fails if a request pinned the digest (or data key) since
// markStart - grace, and a pin fails while the claim holds. So a request
// either keeps the object alive or learns it is gone; it never acknowledges
// something GC then removes.

// ErrGCRunning: another replica holds the GC lease.
var ErrGCRunning = errors.New("gc: another garbage collection is running")

const (
	gcLeaseKey = "gc"
	gcLeaseTTL = 30 * time.Second
	// claimTTL bounds how long a crashed collector's claims block pins.
	claimTTL = 5 * time.Minute
	// gcBatch is how many objects one DeleteBatch removes.
	gcBatch = 500
	// gcReportKey holds the report of the last pass, for `stratus gc status`.
	gcReportKey = "gc/last-run.json"
	// maxDecisions bounds the decisions a report lists.
	maxDecisions = 10000
)

// GCReport is what one pass did; it is stored for `stratus gc status`.
type GCReport struct {
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	DurationSeconds float64   `json:"duration_seconds"`
	// MarkSeconds is the repository phase (mark, and each repository's
	// manifest and link sweep); SweepSeconds the global blob, orphan and
	// upload sweep.
	MarkSeconds       float64       `json:"mark_seconds"`
	SweepSeconds      float64       `json:"sweep_seconds"`
	LinksExamined     int           `json:"links_examined"`
	DryRun            bool          `json:"dry_run"`
	Repositories      int           `json:"repositories"`
	ManifestsExamined int           `json:"manifests_examined"`
	ManifestsDeleted  int           `json:"manifests_deleted"`
	BlobsExamined     int           `json:"blobs_examined"`
	BytesExamined     int64         `json:"bytes_examined"`
	BlobsDeleted      int           `json:"blobs_deleted"`
	BytesReclaimed    int64         `json:"bytes_reclaimed"`
	LinksDeleted      int           `json:"links_deleted"`
	OrphansDeleted    int           `json:"orphan_data_deleted"`
	UploadsAborted    int           `json:"uploads_aborted"`
	ReposRemoved      int           `json:"repositories_removed"`
	KeptByPin         int           `json:"kept_by_pin"`
	KeptYoung         int           `json:"kept_young"`
	Errors            []string      `json:"errors,omitempty"`
	Decisions         []GCDecision  `json:"decisions,omitempty"`
	Policy            GCPolicyState `json:"policy"`
}

// GCPolicyState records the settings a pass ran with.
type GCPolicyState struct {
	GraceSeconds  float64 `json:"grace_seconds"`
	Untagged      string  `json:"untagged"`
	KeepReferrers bool    `json:"keep_referrers"`
}

// GCDecision explains one object's fate (dry runs list them all).
type GCDecision struct {
	Object string `json:"object"`
	Action string `json:"action"` // "delete" or "keep"
	Reason string `json:"reason"`
}

// collector is one GC pass.
type collector struct {
	g      *Registry
	cfg    GCConfig
	dryRun bool
	// cutoff = markStart - grace: pins and writes after it protect.
	markStart, cutoff time.Time

	mu     sync.Mutex
	report *GCReport
	// lastProgress is when progress was last logged (long passes).
	lastProgress time.Time
	live         map[Digest]struct{} // blobs referenced by live manifests
	liveData     map[string]struct{} // data objects referenced by blob records
}

// clock is implemented by lock stores that can tell the shared time (Redis
// TIME), so that every replica's pins and this pass's markStart compare on
// one clock.
type clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// RunGC runs one garbage-collection pass. With dryRun it deletes nothing
// and lists what it would delete, and why.
func (g *Registry) RunGC(ctx context.Context, dryRun bool) (*GCReport, error) {
	lease, err := g.locks.Acquire(ctx, gcLeaseKey, gcLeaseTTL)
	if errors.Is(err, locking.ErrHeld) {
		return nil, ErrGCRunning
	}
	if err != nil {
		return nil, fmt.Errorf("gc lease: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewDone := make(chan struct{})
	stopRenew := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(gcLeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stopRenew:
				return
			case <-t.C:
				l, err := g.locks.Renew(ctx, lease, gcLeaseTTL)
				if err != nil {
					// Another replica may take over: stop deleting now.
					cancel(fmt.Errorf("gc lease lost: %w", err))
					return
				}
				lease = l
			}
		}
	}()
	defer func() {
		close(stopRenew)
		<-renewDone
		if err := g.locks.Release(context.WithoutCancel(ctx), lease); err != nil && !errors.Is(err, locking.ErrLost) {
			g.logger.Warn("gc: releasing lease", "err", err)
		}
	}()

	now := time.Now()
	if c, ok := g.locks.(clock); ok {
		if now, err = c.Now(ctx); err != nil {
			return nil, fmt.Errorf("gc clock: %w", err)
		}
	}
	c := &collector{
		g: g, cfg: g.cfg.GC, dryRun: dryRun,
		markStart: now, cutoff: now.Add(-g.cfg.GC.Grace), lastProgress: time.Now(),
		live: map[Digest]struct{}{}, liveData: map[string]struct{}{},
		report: &GCReport{Started: now.UTC(), DryRun: dryRun, Policy: GCPolicyState{
			GraceSeconds: g.cfg.GC.Grace.Seconds(), Untagged: g.cfg.GC.Untagged, KeepReferrers: *g.cfg.GC.KeepReferrers,
		}},
	}
	g.logger.Info("gc: pass starting", "dry_run", dryRun, "grace", g.cfg.GC.Grace, "untagged", g.cfg.GC.Untagged)
	runErr := c.run(ctx)
	if cause := context.Cause(ctx); runErr != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		runErr = fmt.Errorf("%w: %w", cause, runErr)
	}
	r := c.report
	r.Finished = time.Now().UTC()
	r.DurationSeconds = time.Since(now).Seconds()
	if runErr != nil {
		r.Errors = append(r.Errors, runErr.Error())
	}
	g.recordGC(r, runErr)
	if err := g.saveReport(context.WithoutCancel(ctx), r); err != nil {
		g.logger.Warn("gc: saving report", "err", err)
	}
	g.logger.Info("gc: pass finished", "dry_run", dryRun, "took", time.Since(now),
		"repositories", r.Repositories, "manifests_deleted", r.ManifestsDeleted, "blobs_deleted", r.BlobsDeleted,
		"bytes_reclaimed", r.BytesReclaimed, "links_deleted", r.LinksDeleted, "orphans_deleted", r.OrphansDeleted,
		"uploads_aborted", r.UploadsAborted, "kept_by_pin", r.KeptByPin, "err", runErr)
	return r, runErr
}

func (c *collector) run(ctx context.Context) error {
	markStart := time.Now()
	defer func() {
		c.report.SweepSeconds = time.Since(markStart).Seconds() - c.report.MarkSeconds
	}()
	err := c.eachKey(ctx, catalogPrefix, func(keys []storage.Info) error {
		for _, o := range keys {
			name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, catalogPrefix), catalogSuffix)
			if !ok || !validName(name) {
				continue
			}
			if err := c.collectRepo(ctx, name); err != nil {
				return fmt.Errorf("repository %s: %w", name, err)
			}
			c.progress("mark", "repository", name)
		}
		return nil
	})
	c.report.MarkSeconds = time.Since(markStart).Seconds()
	if err != nil {
		return err
	}
	if err := c.sweepBlobs(ctx); err != nil {
		return fmt.Errorf("blobs: %w", err)
	}
	if err := c.sweepOrphans(ctx); err != nil {
		return fmt.Errorf("orphaned data: %w", err)
	}
	if reaper, ok := c.g.store.(storage.MultipartReaper); ok {
		// A session expires after upload_ttl without activity; a write idle
		// for longer (plus grace) has no session left to resume it.
		n, err := reaper.AbortStale(ctx, c.cutoff.Add(-c.g.cfg.UploadTTL), c.dryRun)
		c.mu.Lock()
		c.report.UploadsAborted += n
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("stale uploads: %w", err)
		}
	}
	return nil
}

// eachKey streams a listing page by page.
func (c *collector) eachKey(ctx context.Context, prefix string, fn func([]storage.Info) error) error {
	after := ""
	for {
		page, err := c.g.store.List(ctx, prefix, after, 0)
		if err != nil {
			return err
		}
		if len(page.Objects) > 0 {
			if err := fn(page.Objects); err != nil {
				return err
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

func (c *collector) decide(object, action, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dryRun && len(c.report.Decisions) < maxDecisions {
		c.report.Decisions = append(c.report.Decisions, GCDecision{Object: object, Action: action, Reason: reason})
	}
}

// digestFromKey parses the "<alg>/<hex>" tail of a manifest or link key.
func digestFromKey(key, prefix string) (Digest, bool) {
	rest := strings.TrimPrefix(key, prefix)
	alg, hexPart, ok := strings.Cut(rest, "/")
	if !ok {
		return Digest{}, false
	}
	d, err := ParseDigest(alg + ":" + hexPart)
	return d, err == nil
}

// collectRepo marks one repository and sweeps its manifests and links.
func (c *collector) collectRepo(ctx context.Context, name string) error {
	g := c.g
	c.report.Repositories++
	manifests := map[Digest]time.Time{}
	mprefix := repoPrefix(name) + "_manifests/"
	if err := c.eachKey(ctx, mprefix, func(objs []storage.Info) error {
		for _, o := range objs {
			if d, ok := digestFromKey(o.Key, mprefix); ok {
				manifests[d] = o.ModTime
			}
		}
		return nil
	}); err != nil {
		return err
	}
	c.report.ManifestsExamined += len(manifests)

	// Roots: tagged manifests, and untagged ones the policy keeps.
	var roots []Digest
	tagged := map[Digest]bool{}
	tprefix := tagsPrefix(name)
	if err := c.eachKey(ctx, tprefix, func(objs []storage.Info) error {
		targets := make([]Digest, len(objs))
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(c.cfg.Concurrency)
		for i, o := range objs {
			eg.Go(func() error {
				b, err := storage.ReadAll(ectx, g.store, o.Key, maxRecordSize)
				if errors.Is(err, storage.ErrNotFound) {
					return nil
				}
				if err != nil {
					return err
				}
				d, err := ParseDigest(strings.TrimSpace(string(b)))
				if err != nil {
					g.logger.Warn("gc: corrupt tag ignored", "key", o.Key)
					return nil
				}
				targets[i] = d
				return nil
			})
		}
		if err := eg.Wait(); err != nil {
			return err
		}
		for _, d := range targets {
			if !d.IsZero() {
				tagged[d] = true
				roots = append(roots, d)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	untaggedCutoff := c.markStart.Add(-c.cfg.UntaggedAge)
	for d, mod := range manifests {
		if tagged[d] {
			continue
		}
		if c.cfg.Untagged == "keep" || !mod.Before(untaggedCutoff) || !mod.Before(c.cutoff) {
			roots = append(roots, d)
		}
	}

	// Referrers by subject, from one listing of the repository's index.
	referrers := map[Digest][]Digest{}
	if *c.cfg.KeepReferrers {
		rprefix := repoPrefix(name) + "_referrers/"
		if err := c.eachKey(ctx, rprefix, func(objs []storage.Info) error {
			for _, o := range objs {
				parts := strings.Split(strings.TrimPrefix(o.Key, rprefix), "/")
				if len(parts) != 3 {
					continue
				}
				subj, err1 := ParseDigest(parts[0] + ":" + parts[1])
				ref, err2 := ParseDigest(strings.Replace(parts[2], "-", ":", 1))
				if err1 == nil && err2 == nil {
					referrers[subj] = append(referrers[subj], ref)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}

	// Closure: children of live indexes, referrers of live manifests, and
	// the blobs of every live manifest.
	liveManifests := map[Digest]bool{}
	repoLive := map[Digest]struct{}{}
	frontier := roots
	for len(frontier) > 0 {
		var batch []Digest
		for _, d := range frontier {
			if _, exists := manifests[d]; exists && !liveManifests[d] {
				liveManifests[d] = true
				batch = append(batch, d)
			}
		}
		frontier = nil
		parsed, err := c.readManifests(ctx, name, batch)
		if err != nil {
			return err
		}
		for i, pm := range parsed {
			frontier = append(frontier, referrers[batch[i]]...)
			if pm == nil {
				continue
			}
			for _, r := range pm.Refs {
				if r.Manifest {
					frontier = append(frontier, r.Digest)
				} else {
					repoLive[r.Digest] = struct{}{}
				}
			}
		}
	}
	c.mu.Lock()
	for d := range repoLive {
		c.live[d] = struct{}{}
	}
	c.mu.Unlock()

	// Sweep unreachable manifests.
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(c.cfg.Concurrency)
	for d, mod := range manifests {
		if liveManifests[d] {
			continue
		}
		if !mod.Before(c.cutoff) {
			c.keptYoung("manifest " + name + "@" + d.String())
			continue
		}
		eg.Go(func() error { return c.deleteManifest(ectx, name, d) })
	}
	if err := eg.Wait(); err != nil {
		return err
	}

	// Sweep links to blobs no live manifest of this repository uses.
	lprefix := repoPrefix(name) + "_links/"
	remaining := 0
	if err := c.eachKey(ctx, lprefix, func(objs []storage.Info) error {
		var doomed []Digest
		c.report.LinksExamined += len(objs)
		for _, o := range objs {
			d, ok := digestFromKey(o.Key, lprefix)
			if !ok {
				continue
			}
			if _, live := repoLive[d]; live {
				remaining++
				continue
			}
			if !o.ModTime.Before(c.cutoff) {
				c.keptYoung("link " + name + "@" + d.String())
				remaining++
				continue
			}
			doomed = append(doomed, d)
		}
		// Claimed per repository: the claim hides d in this repository
		// only, while other repositories go on serving it.
		deleted, err := c.claimAndDelete(ctx, doomed, func(d Digest) string { return linkKey(name, d) },
			func(d Digest) []string { return []string{linkKey(name, d)} },
			"link "+name+"@", "no live manifest of "+name+" references it")
		n := len(deleted)
		remaining += len(doomed) - n
		c.mu.Lock()
		c.report.LinksDeleted += n
		c.mu.Unlock()
		return err
	}); err != nil {
		return err
	}
	if remaining == 0 && len(liveManifests) == 0 && len(tagged) == 0 {
		return c.removeEmptyRepo(ctx, name)
	}
	return nil
}

// readManifests reads and parses manifests concurrently; an entry is nil
// for a manifest deleted meanwhile or one that does not parse (kept, and
// logged: GC never deletes what it cannot understand).
func (c *collector) readManifests(ctx context.Context, name string, ds []Digest) ([]*parsedManifest, error) {
	out := make([]*parsedManifest, len(ds))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(c.cfg.Concurrency)
	for i, d := range ds {
		eg.Go(func() error {
			mt, body, err := c.g.readManifest(ectx, name, d)
			if err != nil {
				if hasCode(err, codeManifestUnknown) {
					return nil
				}
				return err
			}
			pm, err := parseManifest(mt, body)
			if err != nil {
				c.g.logger.Warn("gc: stored manifest does not parse; keeping it", "repo", name, "digest", d.String(), "err", err)
				return nil
			}
			out[i] = pm
			return nil
		})
	}
	return out, eg.Wait()
}

// progressEvery is how often a long pass logs where it is.
const progressEvery = 30 * time.Second

func (c *collector) progress(phase string, attrs ...any) {
	if time.Since(c.lastProgress) < progressEvery {
		return
	}
	c.lastProgress = time.Now()
	c.mu.Lock()
	r := *c.report
	c.mu.Unlock()
	c.g.logger.Info("gc: progress", append([]any{"phase", phase, "repositories", r.Repositories,
		"manifests_examined", r.ManifestsExamined, "manifests_deleted", r.ManifestsDeleted,
		"blobs_examined", r.BlobsExamined, "blobs_deleted", r.BlobsDeleted, "bytes_reclaimed", r.BytesReclaimed,
		"kept_by_pin", r.KeptByPin}, attrs...)...)
}

func (c *collector) keptYoung(object string) {
	c.mu.Lock()
	c.report.KeptYoung++
	c.mu.Unlock()
	c.decide(object, "keep", "younger than the grace period")
}

// claimAndDelete claims each digest under the scope claimOf names (the
// digest itself, or the one link or manifest key being removed), deletes
// the keys keysOf gives for the claimed ones in batches, and releases the
// claims. It returns the digests it deleted (or would, in a dry run).
func (c *collector) claimAndDelete(ctx context.Context, ds []Digest, claimOf func(Digest) string, keysOf func(Digest) []string, what, reason string) ([]Digest, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	if c.dryRun {
		for _, d := range ds {
			c.decide(what+d.String(), "delete", reason)
		}
		return ds, nil
	}
	claimed := make([]bool, len(ds))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(c.cfg.Concurrency)
	for i, d := range ds {
		eg.Go(func() error {
			ok, err := c.g.locks.Claim(ectx, claimOf(d), c.cutoff, claimTTL)
			c.g.hookClaim(claimOf(d), ok)
			claimed[i] = ok
			return err
		})
	}
	err := eg.Wait()
	var keys []string
	var got []Digest
	for i, d := range ds {
		if claimed[i] {
			keys = append(keys, keysOf(d)...)
			got = append(got, d)
		} else if err == nil {
			c.mu.Lock()
			c.report.KeptByPin++
			c.mu.Unlock()
		}
	}
	if err == nil {
		err = c.deleteKeys(ctx, keys)
	}
	for _, d := range got {
		if uerr := c.g.locks.Unclaim(context.WithoutCancel(ctx), claimOf(d)); uerr != nil {
			c.g.logger.Warn("gc: unclaim failed; the claim expires on its own", "claim", claimOf(d), "err", uerr)
		}
	}
	if err != nil {
		return nil, err
	}
	return got, nil
}

func (c *collector) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), gcBatch)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.g.store.DeleteBatch(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// deleteManifest removes an unreachable manifest and its referrer entry,
// under a claim of its digest (a concurrent PUT of it pins the digest).
func (c *collector) deleteManifest(ctx context.Context, name string, d Digest) error {
	keys := []string{manifestKey(name, d)}
	if mt, body, err := c.g.readManifest(ctx, name, d); err == nil {
		if pm, err := parseManifest(mt, body); err == nil && pm.Subject != nil {
			keys = append([]string{referrerKey(name, *pm.Subject, d)}, keys...)
		}
	}
	reason := "no tag reaches it"
	if c.cfg.Untagged == "delete" {
		reason = fmt.Sprintf("untagged and older than %s", c.cfg.UntaggedAge)
	}
	deleted, err := c.claimAndDelete(ctx, []Digest{d}, func(Digest) string { return manifestKey(name, d) },
		func(Digest) []string { return keys }, "manifest "+name+"@", reason)
	c.mu.Lock()
	c.report.ManifestsDeleted += len(deleted)
	c.mu.Unlock()
	return err
}

// sweepBlobs deletes the records and data of blobs no live manifest uses.
func (c *collector) sweepBlobs(ctx context.Context) error {
	return c.eachKey(ctx, "blobs/", func(objs []storage.Info) error {
		type cand struct {
			d   Digest
			rec blobRecord
		}
		cands := make([]*cand, len(objs))
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(c.cfg.Concurrency)
		for i, o := range objs {
			parts := strings.Split(o.Key, "/") // blobs/<alg>/<xx>/<hex>
			if len(parts) != 4 {
				continue
			}
			d, err := ParseDigest(parts[1] + ":" + parts[3])
			if err != nil {
				continue
			}
			eg.Go(func() error {
				rec, err := c.g.readRecord(ectx, d)
				if errors.Is(err, storage.ErrNotFound) {
					return nil
				}
				if err != nil {
					return err
				}
				cands[i] = &cand{d: d, rec: rec}
				return nil
			})
		}
		if err := eg.Wait(); err != nil {
			return err
		}
		var doomed []Digest
		data := map[Digest]blobRecord{}
		for i, cd := range cands {
			if cd == nil {
				continue
			}
			c.mu.Lock()
			c.report.BlobsExamined++
			c.report.BytesExamined += cd.rec.Size
			_, live := c.live[cd.d]
			c.liveData[cd.rec.Data] = struct{}{}
			c.mu.Unlock()
			switch {
			case live:
			case !objs[i].ModTime.Before(c.cutoff):
				c.keptYoung("blob " + cd.d.String())
			default:
				doomed = append(doomed, cd.d)
				data[cd.d] = cd.rec
			}
		}
		// Records go before data: a crash in between leaves an orphaned
		// data object (collected later), never a record without bytes.
		// Only here, where no repository needs d any more, is the digest
		// itself claimed.
		deleted, err := c.claimAndDelete(ctx, doomed, Digest.String, func(d Digest) []string {
			return []string{blobRecordKey(d)}
		}, "blob ", "no live manifest references it")
		if err != nil {
			return err
		}
		// The data objects of deleted records: a new upload of the same
		// digest writes a new data key, so these are nobody's any more.
		var dataKeys []string
		var reclaimed int64
		for _, d := range deleted {
			dataKeys = append(dataKeys, data[d].Data)
			reclaimed += data[d].Size
		}
		if !c.dryRun {
			if err := c.deleteKeys(ctx, dataKeys); err != nil {
				return err
			}
		}
		n := len(deleted)
		c.mu.Lock()
		c.report.BlobsDeleted += n
		c.report.BytesReclaimed += reclaimed
		c.mu.Unlock()
		c.progress("sweep", "last_key", objs[len(objs)-1].Key)
		return nil
	})
}

// sweepOrphans deletes data objects no blob record points at: uploads that
// lost a commit race, or crashed between commit and record. A data object
// whose upload session still exists is being finalized: kept.
func (c *collector) sweepOrphans(ctx context.Context) error {
	return c.eachKey(ctx, dataPrefix, func(objs []storage.Info) error {
		for _, o := range objs {
			c.mu.Lock()
			_, referenced := c.liveData[o.Key]
			c.mu.Unlock()
			if referenced {
				continue
			}
			if !o.ModTime.Before(c.cutoff) {
				c.keptYoung(o.Key)
				continue
			}
			id := strings.TrimPrefix(o.Key, dataPrefix)
			if c.dryRun {
				c.decide(o.Key, "delete", "no blob record points at it")
				c.report.OrphansDeleted++
				continue
			}
			ok, err := c.g.locks.Claim(ctx, o.Key, c.cutoff, claimTTL)
			c.g.hookClaim(o.Key, ok)
			if err != nil {
				return err
			}
			if !ok {
				c.report.KeptByPin++
				continue
			}
			_, serr := c.g.locks.Get(ctx, id)
			var derr error
			if errors.Is(serr, locking.ErrNotFound) {
				derr = c.g.store.Delete(ctx, o.Key)
				if derr == nil {
					c.report.OrphansDeleted++
				}
			}
			if uerr := c.g.locks.Unclaim(context.WithoutCancel(ctx), o.Key); uerr != nil {
				c.g.logger.Warn("gc: unclaim failed; the claim expires on its own", "key", o.Key, "err", uerr)
			}
			if serr != nil && !errors.Is(serr, locking.ErrNotFound) {
				return serr
			}
			if derr != nil {
				return derr
			}
		}
		return nil
	})
}

// removeEmptyRepo drops a repository with nothing left from the catalog.
// Writers create their link or manifest BEFORE they check the catalog entry
// (ensureRepo), so re-listing after the delete catches any write that
// raced with it: either we see the write and restore the entry, or the
// writer's check comes after our delete and restores it itself.
func (c *collector) removeEmptyRepo(ctx context.Context, name string) error {
	if c.dryRun {
		c.decide("repository "+name, "delete", "no manifests, tags or blobs left")
		c.report.ReposRemoved++
		return nil
	}
	if err := c.g.store.Delete(ctx, catalogKey(name)); err != nil {
		return err
	}
	page, err := c.g.store.List(ctx, repoPrefix(name), "", 1)
	if err != nil {
		return err
	}
	if len(page.Objects) > 0 {
		return c.g.ensureRepo(ctx, name)
	}
	c.report.ReposRemoved++
	return nil
}

func (g *Registry) saveReport(ctx context.Context, r *GCReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = g.store.Put(ctx, gcReportKey, strings.NewReader(string(b)), storage.PutOptions{Size: int64(len(b)), ContentType: "application/json"})
	return err
}

// LastGCReport returns the report of the last pass, or storage.ErrNotFound.
func (g *Registry) LastGCReport(ctx context.Context) (*GCReport, error) {
	b, err := storage.ReadAll(ctx, g.store, gcReportKey, 64<<20)
	if err != nil {
		return nil, err
	}
	var r GCReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("gc report: %w", err)
	}
	return &r, nil
}

// RunGCLoop runs a pass every gc.interval (jittered by up to 10%) until
// ctx ends. Every replica runs the loop; the lease lets one pass at a time
// proceed, and a replica that finds it held just waits for its next turn.
func (g *Registry) RunGCLoop(ctx context.Context) {
	if g.cfg.GC.Interval <= 0 {
		return
	}
	for {
		wait := g.cfg.GC.Interval + time.Duration(rand.Int64N(int64(g.cfg.GC.Interval)/10+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		_, err := g.RunGC(ctx, false)
		switch {
		case err == nil, errors.Is(err, ErrGCRunning), ctx.Err() != nil:
		default:
			g.logger.Warn("gc: pass failed; next one at the next interval", "err", err)
		}
	}
}
