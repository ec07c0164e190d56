// Package retention decides which tags of a repository to delete under the
// retention rules (policies.retention). It only decides; the online GC
// pass (registry/gc) lists the tags, asks Decide, and deletes under its
// claims, before it marks, so the manifests the deleted tags freed are
// collected like any other untagged manifest.
//
// Repository and tag patterns are doublestar globs, as in the auth policy
// and policy/immutable. The first rule whose repository pattern matches
// applies; a repository no rule matches keeps every tag.
package retention

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/stratus-registry/stratus/policy"
)

// Rule is one entry of policies.retention.
type Rule struct {
	Repository string `yaml:"repository"`
	// KeepNewest keeps the N most recently written tags.
	KeepNewest int `yaml:"keep_newest"`
	// KeepTags keeps every tag matching one of these globs. A rule with
	// neither KeepNewest nor DeleteOlderThan deletes no tag.
	KeepTags []string `yaml:"keep_tags"`
	// DeleteOlderThan deletes tags last written longer ago than this (and
	// not kept otherwise). Without it, every tag beyond the newest
	// KeepNewest that nothing else keeps is deleted.
	DeleteOlderThan time.Duration `yaml:"delete_older_than"`
	// KeepUntaggedFor is how long a manifest no tag reaches is kept in
	// matching repositories (registry.gc.untagged "delete" with this age,
	// for these repositories only). Zero: registry.gc.untagged_age.
	KeepUntaggedFor time.Duration `yaml:"keep_untagged_for"`
}

// Immutability is what retention asks policy/immutable: an immutable tag
// is never deleted by retention.
type Immutability interface {
	Immutable(repo, tag string) (rule string, ok bool)
}

// Policy is a validated list of rules.
type Policy struct {
	rules     []Rule
	immutable Immutability
}

// Validate returns every problem of rules at once, each with its key path
// under prefix (e.g. "policies.retention").
func Validate(prefix string, rules []Rule) []error {
	var errs []error
	for i, r := range rules {
		at := fmt.Sprintf("%s[%d]", prefix, i)
		if err := policy.CheckRepository(at+".repository", r.Repository); err != nil {
			errs = append(errs, err)
		}
		if r.KeepNewest < 0 {
			errs = append(errs, fmt.Errorf("%s.keep_newest: %d is negative", at, r.KeepNewest))
		}
		if r.DeleteOlderThan < 0 {
			errs = append(errs, fmt.Errorf("%s.delete_older_than: %s is negative", at, r.DeleteOlderThan))
		}
		if r.KeepUntaggedFor < 0 {
			errs = append(errs, fmt.Errorf("%s.keep_untagged_for: %s is negative", at, r.KeepUntaggedFor))
		}
		if r.KeepNewest == 0 && r.DeleteOlderThan == 0 && len(r.KeepTags) > 0 {
			// A rule with neither deletes no tag, so keep_tags would do
			// nothing: say so rather than accept a rule that misleads.
			errs = append(errs, fmt.Errorf("%s.keep_tags: has no effect without keep_newest or delete_older_than", at))
		}
		for j, t := range r.KeepTags {
			if err := policy.CheckGlob(fmt.Sprintf("%s.keep_tags[%d]", at, j), t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// New returns the policy of rules; immutable may be nil (no tag is).
func New(rules []Rule, immutable Immutability) (*Policy, error) {
	if errs := Validate("retention", rules); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Policy{rules: slices.Clone(rules), immutable: immutable}, nil
}

// rule returns the first rule matching repo.
func (p *Policy) rule(repo string) (Rule, bool) {
	if p == nil {
		return Rule{}, false
	}
	for _, r := range p.rules {
		// Patterns were validated by New, so Match cannot fail here.
		if ok, _ := doublestar.Match(r.Repository, repo); ok {
			return r, true
		}
	}
	return Rule{}, false
}

// Covers reports whether a rule applies to repo.
func (p *Policy) Covers(repo string) bool {
	_, ok := p.rule(repo)
	return ok
}

// UntaggedAge is how long untagged manifests of repo are kept: ok is false
// where no rule applies (the registry-wide untagged policy holds), and age
// is 0 where the rule leaves it to registry.gc.untagged_age.
func (p *Policy) UntaggedAge(repo string) (age time.Duration, ok bool) {
	r, ok := p.rule(repo)
	return r.KeepUntaggedFor, ok
}

// Tag is one tag as retention sees it.
type Tag struct {
	Name    string
	ModTime time.Time
}

// Decision is the fate of one tag, with the reason a dry run shows.
type Decision struct {
	Tag    string
	Delete bool
	Reason string
}

// Decide returns one decision per tag of repo, newest first; nil if no
// rule applies. now is the pass's clock (the shared lock-store time).
func (p *Policy) Decide(repo string, tags []Tag, now time.Time) []Decision {
	r, ok := p.rule(repo)
	if !ok {
		return nil
	}
	sorted := slices.Clone(tags)
	slices.SortFunc(sorted, func(a, b Tag) int {
		if c := b.ModTime.Compare(a.ModTime); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	out := make([]Decision, len(sorted))
	for i, t := range sorted {
		out[i] = Decision{Tag: t.Name}
		out[i].Delete, out[i].Reason = p.decideOne(repo, r, i, t, now)
	}
	return out
}

// decideOne applies r to the tag at rank (0: newest).
func (p *Policy) decideOne(repo string, r Rule, rank int, t Tag, now time.Time) (bool, string) {
	if r.KeepNewest == 0 && r.DeleteOlderThan == 0 {
		// A rule of keep_untagged_for only: it limits no tag.
		return false, "kept, the rule limits no tags"
	}
	if p.immutable != nil {
		if rule, ok := p.immutable.Immutable(repo, t.Name); ok {
			return false, "kept, immutable (" + rule + ")"
		}
	}
	for _, pat := range r.KeepTags {
		if ok, _ := doublestar.Match(pat, t.Name); ok {
			return false, "kept, matches " + pat
		}
	}
	if rank < r.KeepNewest {
		return false, fmt.Sprintf("kept, newest %d", r.KeepNewest)
	}
	if r.DeleteOlderThan == 0 {
		return true, fmt.Sprintf("not among the newest %d", r.KeepNewest)
	}
	if age := now.Sub(t.ModTime); age > r.DeleteOlderThan {
		return true, "older than " + FormatAge(r.DeleteOlderThan)
	}
	return false, "kept, younger than " + FormatAge(r.DeleteOlderThan)
}

// FormatAge writes whole days as "30d" (retention ages are usually days),
// anything else as a Go duration.
func FormatAge(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}
