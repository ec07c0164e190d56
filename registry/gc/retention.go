package gc

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/registry/content"
)

// Retention decides which tags a pass deletes, and how long untagged
// manifests are kept, per repository (policy/retention's ForGC implements
// it: registry packages import no policy package).
type Retention interface {
	// Decide returns a decision per tag; nil where no rule applies.
	Decide(repo string, tags []Tag, now time.Time) []TagDecision
	// UntaggedAge: ok where a rule applies, which makes untagged manifests
	// of repo go after age (0: the pass's UntaggedAge).
	UntaggedAge(repo string) (age time.Duration, ok bool)
}

// Tag is one tag as retention sees it.
type Tag struct {
	Name    string
	ModTime time.Time // when it was last written
}

// TagDecision is retention's verdict on one tag, with the reason a dry
// run lists.
type TagDecision struct {
	Tag    string
	Delete bool
	Reason string
}

// untaggedPolicy is the untagged policy for repo: the pass's, or "delete"
// where a retention rule applies (retention frees manifests by removing
// their tags, so keeping untagged manifests forever would free nothing).
func (p *pass) untaggedPolicy(repo string) (policy string, age time.Duration) {
	policy, age = p.cfg.Untagged, p.cfg.UntaggedAge
	if p.cfg.Retention == nil {
		return policy, age
	}
	if a, ok := p.cfg.Retention.UntaggedAge(repo); ok {
		policy = "delete"
		if a > 0 {
			age = a
		}
	}
	return policy, age
}

// applyRetention deletes the tags the retention rules doom, before the
// repository is marked, and returns their names so the mark ignores them
// (in a dry run they still exist, and the report then shows what their
// deletion would free).
func (p *pass) applyRetention(ctx context.Context, repo *content.Repository) (map[string]bool, error) {
	if p.cfg.Retention == nil {
		return nil, nil
	}
	var entries []content.TagEntry
	if err := repo.EachTagPage(ctx, func(page []content.TagEntry) error {
		entries = append(entries, page...)
		return nil
	}); err != nil {
		return nil, err
	}
	tags := make([]Tag, len(entries))
	byName := make(map[string]content.TagEntry, len(entries))
	for i, e := range entries {
		tags[i] = Tag{Name: e.Tag, ModTime: e.ModTime}
		byName[e.Tag] = e
	}
	decisions := p.cfg.Retention.Decide(repo.Name(), tags, p.markStart)
	doomed := map[string]bool{}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(p.cfg.Concurrency)
	for _, d := range decisions {
		object := "tag " + repo.Name() + ":" + d.Tag
		e := byName[d.Tag]
		switch {
		case !d.Delete:
			p.decide(object, "keep", d.Reason)
			continue
		case !e.ModTime.Before(p.cutoff):
			p.keptYoung(object)
			continue
		case p.dryRun:
			p.decide(object, "delete", d.Reason)
			p.mu.Lock()
			doomed[d.Tag] = true
			p.report.TagsDeleted++
			p.mu.Unlock()
			continue
		}
		eg.Go(func() error {
			deleted, err := p.deleteTag(ectx, repo, e)
			if deleted {
				p.mu.Lock()
				doomed[e.Tag] = true
				p.report.TagsDeleted++
				p.mu.Unlock()
			}
			return err
		})
	}
	return doomed, eg.Wait()
}

// deleteTag deletes one listed tag under the claim of its key, and only if
// it is unchanged since the listing (content.DeleteTagIfUnchanged): a
// client that re-tagged either pinned the key (the claim fails) or wrote a
// new object (the re-read sees it).
func (p *pass) deleteTag(ctx context.Context, repo *content.Repository, e content.TagEntry) (bool, error) {
	want, err := repo.ResolveEntry(ctx, e)
	if errors.Is(err, content.ErrManifestUnknown) || errors.Is(err, content.ErrCorrupt) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := p.claimsAllowed(); err != nil {
		return false, err
	}
	t := repo.TagTarget(e)
	ok, err := p.store.Claim(ctx, t, p.cutoff, ClaimTTL)
	if err != nil || !ok {
		if err == nil {
			p.mu.Lock()
			p.report.KeptByPin++
			p.mu.Unlock()
		}
		return false, err
	}
	defer p.unclaim(ctx, []content.Target{t})
	deleted, err := repo.DeleteTagIfUnchanged(ctx, e, want)
	if err == nil && !deleted {
		p.logger.Info("gc: tag changed since it was listed; retention keeps it", "repo", repo.Name(), "tag", e.Tag)
	}
	if deleted && p.cfg.OnDelete != nil {
		p.cfg.OnDelete(ctx, Deletion{Kind: DeletedTag, Repository: repo.Name(), Digest: want, Tag: e.Tag})
	}
	return deleted, err
}
