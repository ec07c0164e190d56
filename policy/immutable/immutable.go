// Package immutable decides whether a tag may be written or deleted under
// the immutable-tags rules (policies.immutable_tags). It only decides: the
// registry enforces a "create only" rule with the content store's
// create-only tag write, so two replicas racing to create one tag leave
// exactly one winner.
//
// Repository and tag patterns are globs of github.com/bmatcuk/doublestar/v4
// (the syntax of the auth policy): "prod/**" covers "prod" and everything
// below it, "v*" covers "v1.2.3". Rules are checked in order; the first rule
// whose repository and tag patterns both match applies.
package immutable

import (
	"errors"
	"fmt"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/stratus-registry/stratus/policy"
)

// Rule is one entry of policies.immutable_tags.
type Rule struct {
	Repository  string   `yaml:"repository"`
	Tags        []string `yaml:"tags"`
	AllowDelete bool     `yaml:"allow_delete"`
}

// String names the rule in error messages and dry-run reasons.
func (r Rule) String() string {
	return fmt.Sprintf("immutable_tags[repository=%q tags=%q]", r.Repository, r.Tags)
}

// Policy is a validated list of rules. The zero Policy has no rules.
type Policy struct {
	rules []Rule
}

// Validate returns every problem of rules at once, each prefixed with its
// key path under prefix (e.g. "policies.immutable_tags").
func Validate(prefix string, rules []Rule) []error {
	var errs []error
	for i, r := range rules {
		at := fmt.Sprintf("%s[%d]", prefix, i)
		if err := policy.CheckRepository(at+".repository", r.Repository); err != nil {
			errs = append(errs, err)
		}
		if len(r.Tags) == 0 {
			errs = append(errs, fmt.Errorf("%s.tags: at least one tag pattern is required (use \"*\" for every tag)", at))
		}
		for j, t := range r.Tags {
			if err := policy.CheckGlob(fmt.Sprintf("%s.tags[%d]", at, j), t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// New returns the policy of rules; the error lists every invalid rule.
func New(rules []Rule) (*Policy, error) {
	if errs := Validate("immutable_tags", rules); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Policy{rules: append([]Rule(nil), rules...)}, nil
}

// Match returns the first rule covering tag in repo.
func (p *Policy) Match(repo, tag string) (Rule, bool) {
	if p == nil {
		return Rule{}, false
	}
	for _, r := range p.rules {
		// Patterns were validated by New, so Match cannot fail here.
		if ok, _ := doublestar.Match(r.Repository, repo); !ok {
			continue
		}
		for _, t := range r.Tags {
			if ok, _ := doublestar.Match(t, tag); ok {
				return r, true
			}
		}
	}
	return Rule{}, false
}

// CoversRepository reports whether any rule's repository pattern matches
// repo, so callers can skip per-tag work for repositories no rule names.
func (p *Policy) CoversRepository(repo string) bool {
	if p == nil {
		return false
	}
	for _, r := range p.rules {
		if ok, _ := doublestar.Match(r.Repository, repo); ok {
			return true
		}
	}
	return false
}

// Immutable reports whether tag in repo may only be created, never moved,
// and names the rule that says so.
func (p *Policy) Immutable(repo, tag string) (rule string, ok bool) {
	r, ok := p.Match(repo, tag)
	if !ok {
		return "", false
	}
	return r.String(), true
}

// CheckDelete returns a *DeniedError if a rule forbids deleting tag.
func (p *Policy) CheckDelete(repo, tag string) error {
	r, ok := p.Match(repo, tag)
	if !ok || r.AllowDelete {
		return nil
	}
	return &DeniedError{Repository: repo, Tag: tag, Rule: r.String(), Op: "deleted"}
}

// DeniedError: a rule forbids the operation on the tag.
type DeniedError struct {
	Repository, Tag, Rule string
	Op                    string // "deleted" or "moved"
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("tag %s of %s is immutable and may not be %s (rule %s)", e.Tag, e.Repository, e.Op, e.Rule)
}
