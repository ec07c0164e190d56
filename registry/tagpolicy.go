package registry

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// TagPolicy decides which tags are create-only and which may not be
// deleted (policy/immutable implements it). The registry enforces the
// answers: an immutable tag is written with the content store's create-only
// write, so the decision holds across replicas without a lock.
type TagPolicy interface {
	// Immutable reports whether tag of repo may only be created, and names
	// the rule that says so.
	Immutable(repo, tag string) (rule string, ok bool)
	// CheckDelete returns an error, whose message is the client's answer,
	// if tag of repo may not be deleted.
	CheckDelete(repo, tag string) error
	// CoversRepository reports whether any rule can apply to repo, so a
	// manifest delete lists its tags only where a rule could refuse it.
	CoversRepository(repo string) bool
}

// noTagPolicy is the default: every tag may move and be deleted.
type noTagPolicy struct{}

func (noTagPolicy) Immutable(string, string) (string, bool) { return "", false }
func (noTagPolicy) CheckDelete(string, string) error        { return nil }
func (noTagPolicy) CoversRepository(string) bool            { return false }

// splitTags separates the tags a rule makes create-only.
func (g *Registry) splitTags(repo string, tags []string) (mutable, immutable []string, rules map[string]string) {
	for _, t := range tags {
		if rule, ok := g.tagPolicy.Immutable(repo, t); ok {
			if rules == nil {
				rules = map[string]string{}
			}
			immutable = append(immutable, t)
			rules[t] = rule
			continue
		}
		mutable = append(mutable, t)
	}
	return mutable, immutable, rules
}

// errImmutable is the answer to a PUT that would move an immutable tag.
func errImmutable(repo, tag, rule string, cause error) *apiError {
	return newError(codeDenied, "tag %s of %s is immutable (rule %s) and already points at another manifest", tag, repo, rule).
		withDetail(map[string]string{"tag": tag, "rule": rule}).withCause(cause)
}

// checkImmutable refuses, before anything is stored, a PUT that would move
// an immutable tag that is already set elsewhere. It is only the cheap
// early answer: the create-only write in putTags is what decides a race.
func checkImmutable(ctx context.Context, repo *content.Repository, d digest.Digest, immutable []string, rules map[string]string) error {
	for _, t := range immutable {
		got, err := repo.ResolveTag(ctx, t)
		switch {
		case errors.Is(err, content.ErrManifestUnknown):
		case err != nil:
			return err
		case got != d:
			return errImmutable(repo.Name(), t, rules[t], nil)
		}
	}
	return nil
}

// putTags creates the immutable tags (create-only; the same digest again
// succeeds), then moves the mutable ones. Immutable tags go first so a PUT
// that loses a race for one moves no other tag.
func putTags(ctx context.Context, repo *content.Repository, d digest.Digest, mutable, immutable []string, rules map[string]string) error {
	for _, t := range immutable {
		if err := repo.CreateTag(ctx, t, d); err != nil {
			if errors.Is(err, content.ErrTagExists) {
				return errImmutable(repo.Name(), t, rules[t], err)
			}
			return err
		}
	}
	for _, t := range mutable {
		if err := repo.SetTag(ctx, t, d); err != nil {
			return err
		}
	}
	return nil
}

// checkManifestDelete refuses deleting manifest d while a tag a rule keeps
// points at it: deleting the manifest removes its tags too.
func (g *Registry) checkManifestDelete(ctx context.Context, repo *content.Repository, d digest.Digest) error {
	if !g.tagPolicy.CoversRepository(repo.Name()) {
		return nil
	}
	return repo.EachTagPage(ctx, func(page []content.TagEntry) error {
		for _, t := range page {
			got, err := repo.ResolveEntry(ctx, t)
			switch {
			case errors.Is(err, content.ErrManifestUnknown), errors.Is(err, content.ErrCorrupt):
				continue
			case err != nil:
				return err
			case got != d:
				continue
			}
			if err := g.tagPolicy.CheckDelete(repo.Name(), t.Tag); err != nil {
				return newError(codeDenied, "manifest %s cannot be deleted: %v", d, err).
					withDetail(map[string]string{"tag": t.Tag}).withCause(err)
			}
		}
		return nil
	})
}
