package gc

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// repoMark is what the mark of one repository found.
type repoMark struct {
	// manifests is every manifest, with its object's listed version (its
	// age, and what the mark cache files it under).
	manifests map[digest.Digest]content.Version
	tagged    map[digest.Digest]bool
	roots     []digest.Digest
	// referrers by subject (only with keep_referrers).
	referrers map[digest.Digest][]digest.Digest
	// the closure: live manifests and the blobs they use.
	liveManifests map[digest.Digest]bool
	// liveBlobs maps each blob to its descriptor's size, and
	// manifestSizes each live manifest read to its body's length: the
	// storage report (storage.go).
	liveBlobs     map[digest.Digest]int64
	manifestSizes map[digest.Digest]int64
}

// collectRepo marks one repository, takes the closure, sweeps its
// manifests and links, and removes it when nothing is left.
func (p *pass) collectRepo(ctx context.Context, repo *content.Repository) error {
	p.mu.Lock()
	p.report.Repositories++
	p.mu.Unlock()
	retired, err := p.applyRetention(ctx, repo)
	if err != nil {
		return fmt.Errorf("retention of %s: %w", repo.Name(), err)
	}
	m, err := p.mark(ctx, repo, retired)
	if err != nil {
		return err
	}
	if err := p.closure(ctx, repo, m); err != nil {
		return err
	}
	p.mu.Lock()
	for d := range m.liveBlobs {
		p.live[d] = struct{}{}
	}
	p.mu.Unlock()
	p.storage.addRepo(repo.Name(), m.manifestSizes, m.liveBlobs)
	if err := p.sweepManifests(ctx, repo, m); err != nil {
		return err
	}
	remaining, err := p.sweepLinks(ctx, repo, m)
	if err != nil {
		return err
	}
	if remaining == 0 && len(m.liveManifests) == 0 && len(m.tagged) == 0 {
		return p.removeRepo(ctx, repo)
	}
	return nil
}

// mark lists the repository's manifests and finds the roots: tagged
// manifests, and untagged ones the policy keeps; and, with keep_referrers,
// the referrers of every subject. Tags in retired (retention deleted them,
// or would in a dry run) do not count.
func (p *pass) mark(ctx context.Context, repo *content.Repository, retired map[string]bool) (*repoMark, error) {
	m := &repoMark{manifests: map[digest.Digest]content.Version{}, tagged: map[digest.Digest]bool{}, referrers: map[digest.Digest][]digest.Digest{}}
	if err := repo.EachManifest(ctx, func(page []content.Entry) error {
		for _, e := range page {
			m.manifests[e.Digest] = e.Version
		}
		return nil
	}); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.report.ManifestsExamined += len(m.manifests)
	p.mu.Unlock()
	if err := p.markTagged(ctx, repo, m, retired); err != nil {
		return nil, err
	}
	untagged, untaggedAge := p.untaggedPolicy(repo.Name())
	untaggedCutoff := p.markStart.Add(-untaggedAge)
	for d, v := range m.manifests {
		if m.tagged[d] {
			continue
		}
		if untagged == "keep" || !v.ModTime.Before(untaggedCutoff) || !v.ModTime.Before(p.cutoff) {
			m.roots = append(m.roots, d)
		}
	}
	if p.cfg.KeepReferrers {
		if err := repo.EachReferrer(ctx, func(subject, ref digest.Digest) {
			m.referrers[subject] = append(m.referrers[subject], ref)
		}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// markTagged reads where every tag points, concurrently per listing page;
// a tag the mark cache has at its listed version is not read.
func (p *pass) markTagged(ctx context.Context, repo *content.Repository, m *repoMark, retired map[string]bool) error {
	return repo.EachTagPage(ctx, func(page []content.TagEntry) error {
		targets := make([]digest.Digest, len(page))
		err := p.fanOut(ctx, len(page), func(ctx context.Context, i int) error {
			t := page[i]
			if retired[t.Tag] {
				return nil
			}
			key := tagCacheKey(repo.Name(), t.Tag)
			if e, ok := p.cfg.MarkCache.lookup(key, t.Version); ok {
				targets[i] = e.target
				p.cacheHit()
				return nil
			}
			d, err := repo.ResolveEntry(ctx, t)
			switch {
			case errors.Is(err, content.ErrManifestUnknown):
				return nil
			case errors.Is(err, content.ErrCorrupt):
				p.logger.Warn("gc: corrupt tag ignored", "repo", repo.Name(), "tag", t.Tag)
				return nil
			case err != nil:
				return err
			}
			targets[i] = d
			p.cfg.MarkCache.store(key, p.markStart, markEntry{version: t.Version, target: d})
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range targets {
			if d != "" {
				m.tagged[d] = true
				m.roots = append(m.roots, d)
			}
		}
		return nil
	})
}

// closure walks from the roots: children of live indexes, referrers of
// live manifests, and the blobs of every live manifest.
func (p *pass) closure(ctx context.Context, repo *content.Repository, m *repoMark) error {
	m.liveManifests = map[digest.Digest]bool{}
	m.liveBlobs = map[digest.Digest]int64{}
	m.manifestSizes = map[digest.Digest]int64{}
	frontier := m.roots
	for len(frontier) > 0 {
		var batch []digest.Digest
		for _, d := range frontier {
			if _, exists := m.manifests[d]; exists && !m.liveManifests[d] {
				m.liveManifests[d] = true
				batch = append(batch, d)
			}
		}
		frontier = nil
		read, err := p.readManifests(ctx, repo, m, batch)
		if err != nil {
			return err
		}
		for i, rm := range read {
			frontier = append(frontier, m.referrers[batch[i]]...)
			if rm.found {
				m.manifestSizes[batch[i]] = rm.size
			}
			if rm.parsed == nil {
				continue
			}
			for _, r := range rm.parsed.Refs {
				if r.Manifest {
					frontier = append(frontier, r.Digest)
				} else if _, seen := m.liveBlobs[r.Digest]; !seen {
					m.liveBlobs[r.Digest] = r.Size
				}
			}
		}
	}
	return nil
}

// readManifest is one manifest the closure read: found is false for a
// manifest deleted meanwhile, parsed nil also for one that does not parse
// (kept, and logged: GC never deletes what it cannot understand).
type readManifest struct {
	parsed *content.Parsed
	size   int64
	found  bool
}

// readManifests reads and parses manifests concurrently; a manifest the
// mark cache has at its listed version is not read.
func (p *pass) readManifests(ctx context.Context, repo *content.Repository, m *repoMark, ds []digest.Digest) ([]readManifest, error) {
	out := make([]readManifest, len(ds))
	err := p.fanOut(ctx, len(ds), func(ctx context.Context, i int) error {
		d := ds[i]
		key, version := manifestCacheKey(repo.Name(), d), m.manifests[d]
		if e, ok := p.cfg.MarkCache.lookup(key, version); ok {
			out[i] = readManifest{parsed: &content.Parsed{Refs: e.refs}, size: e.size, found: true}
			p.cacheHit()
			return nil
		}
		man, err := repo.GetManifest(ctx, d)
		if errors.Is(err, content.ErrManifestUnknown) {
			return nil
		}
		if err != nil {
			return err
		}
		out[i] = readManifest{size: int64(len(man.Body)), found: true}
		pm, err := man.Parse()
		if err != nil {
			p.logger.Warn("gc: stored manifest does not parse; keeping it", "repo", repo.Name(), "digest", d.String(), "err", err)
			return nil
		}
		out[i].parsed = pm
		p.cfg.MarkCache.store(key, p.markStart, markEntry{version: version, refs: pm.Refs, size: int64(len(man.Body))})
		return nil
	})
	return out, err
}

// sweepManifests deletes the unreachable manifests older than grace,
// claimed per repository (a concurrent PUT of the manifest here pins this
// key), a batch of claims and deletes for the whole repository.
func (p *pass) sweepManifests(ctx context.Context, repo *content.Repository, m *repoMark) error {
	reason := "no tag reaches it"
	if untagged, age := p.untaggedPolicy(repo.Name()); untagged == "delete" {
		reason = fmt.Sprintf("untagged and older than %s", age)
	}
	var doomed []digest.Digest
	for d, v := range m.manifests {
		if m.liveManifests[d] {
			continue
		}
		if !v.ModTime.Before(p.cutoff) {
			p.keptYoung("manifest " + repo.Name() + "@" + d.String())
			continue
		}
		doomed = append(doomed, d)
	}
	if len(doomed) == 0 {
		return nil
	}
	// A referrer's target names its subject's record: one listing of the
	// repository's referrers index (made by the mark already with
	// keep_referrers) instead of a read of every doomed manifest.
	referrers := m.referrers
	if !p.cfg.KeepReferrers {
		referrers = map[digest.Digest][]digest.Digest{}
		if err := repo.EachReferrer(ctx, func(subject, ref digest.Digest) {
			referrers[subject] = append(referrers[subject], ref)
		}); err != nil {
			return err
		}
	}
	subjects := map[digest.Digest][]digest.Digest{}
	for subject, refs := range referrers {
		for _, ref := range refs {
			subjects[ref] = append(subjects[ref], subject)
		}
	}
	ts := make([]content.Target, len(doomed))
	for i, d := range doomed {
		ts[i] = repo.ManifestTarget(d, subjects[d]...)
	}
	deleted, err := p.claimAndDelete(ctx, ts, "manifest "+repo.Name()+"@", reason)
	p.deleted(ctx, DeletedManifest, repo.Name(), deleted)
	p.mu.Lock()
	p.report.ManifestsDeleted += len(deleted)
	p.mu.Unlock()
	return err
}

// sweepLinks deletes links to blobs no live manifest of the repository
// uses; it returns how many links are left.
func (p *pass) sweepLinks(ctx context.Context, repo *content.Repository, m *repoMark) (remaining int, err error) {
	err = repo.EachLink(ctx, func(page []content.Entry) error {
		var doomed []content.Target
		p.mu.Lock()
		p.report.LinksExamined += len(page)
		p.mu.Unlock()
		for _, e := range page {
			if _, live := m.liveBlobs[e.Digest]; live {
				remaining++
				continue
			}
			if !e.ModTime.Before(p.cutoff) {
				p.keptYoung("link " + repo.Name() + "@" + e.Digest.String())
				remaining++
				continue
			}
			// Claimed per repository: the claim hides the blob in this
			// repository only, while other repositories go on serving it.
			doomed = append(doomed, repo.LinkTarget(e.Digest))
		}
		deleted, err := p.claimAndDelete(ctx, doomed, "link "+repo.Name()+"@", "no live manifest of "+repo.Name()+" references it")
		p.deleted(ctx, DeletedLink, repo.Name(), deleted)
		remaining += len(doomed) - len(deleted)
		p.mu.Lock()
		p.report.LinksDeleted += len(deleted)
		p.mu.Unlock()
		return err
	})
	return remaining, err
}

// removeRepo drops a repository with nothing left from the catalog.
func (p *pass) removeRepo(ctx context.Context, repo *content.Repository) error {
	if p.dryRun {
		p.decide("repository "+repo.Name(), "delete", "no manifests, tags or blobs left")
		p.mu.Lock()
		p.report.ReposRemoved++
		p.mu.Unlock()
		return nil
	}
	removed, err := repo.RemoveIfEmpty(ctx)
	if err != nil {
		return err
	}
	if removed {
		p.mu.Lock()
		p.report.ReposRemoved++
		p.mu.Unlock()
	}
	return nil
}
