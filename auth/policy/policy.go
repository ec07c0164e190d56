// Package policy decides which user may do what to which repository: users
// and groups, and allow rules by repository glob. It knows nothing about
// how a user was authenticated; the auth package asks it with the user's
// name ("" for anonymous).
package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/stratus-registry/stratus/auth/scope"
)

// Config is the auth.access section of the configuration.
//
// Rules only allow; what no rule allows is denied. With no rules at all,
// every authenticated user may do everything (the single-team htpasswd
// setup) and anonymous users nothing.
type Config struct {
	// Groups name sets of users: {team-a: [alice, bob]}.
	Groups map[string][]string `yaml:"groups"`
	Rules  []Rule              `yaml:"rules"`
}

// Rule allows Actions on the repositories matching Repository (or on the
// catalog) to the users, groups and/or anonymous callers it names.
type Rule struct {
	// Repository is a glob over repository names ("team-a/**", "*/app");
	// a leading "~/" is the caller's own name: "~/**" is alice's alice/**.
	Repository string `yaml:"repository"`
	// Catalog makes the rule grant registry:catalog:* instead.
	Catalog bool `yaml:"catalog"`
	// Users are user names; "*" is every authenticated user.
	Users  []string `yaml:"users"`
	Groups []string `yaml:"groups"`
	// Anonymous includes callers without credentials.
	Anonymous bool `yaml:"anonymous"`
	// Actions are pull, push, delete or "*" (all three).
	Actions []string `yaml:"actions"`
}

// Anyone is the Users entry that matches every authenticated user.
const Anyone = "*"

// personal is the prefix of a rule on the caller's own namespace.
const personal = "~/"

// component is what a user name must look like to own a namespace: one
// repository-name component, so that it can never widen the glob ("*")
// or reach another namespace ("a/b").
var component = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

// Validate reports every problem, each with its key path under prefix
// (e.g. "auth.access").
func (c Config) Validate(prefix string) error {
	var errs []error
	for g, members := range c.Groups {
		if g == "" {
			errs = append(errs, fmt.Errorf("%s.groups: empty group name", prefix))
		}
		for i, m := range members {
			if m == "" || m == Anyone {
				errs = append(errs, fmt.Errorf("%s.groups.%s[%d]: %q is not a user name", prefix, g, i, m))
			}
		}
	}
	for i, r := range c.Rules {
		errs = append(errs, r.validate(fmt.Sprintf("%s.rules[%d]", prefix, i), c.Groups))
	}
	return errors.Join(errs...)
}

func (r Rule) validate(key string, groups map[string][]string) error {
	var errs []error
	switch {
	case r.Catalog && r.Repository != "":
		errs = append(errs, fmt.Errorf("%s: set repository or catalog, not both", key))
	case !r.Catalog && r.Repository == "":
		errs = append(errs, fmt.Errorf("%s.repository: required (a glob such as team-a/**), or catalog: true", key))
	case !r.Catalog && !doublestar.ValidatePattern(strings.TrimPrefix(r.Repository, personal)):
		errs = append(errs, fmt.Errorf("%s.repository: %q is not a valid glob", key, r.Repository))
	}
	if len(r.Users) == 0 && len(r.Groups) == 0 && !r.Anonymous {
		errs = append(errs, fmt.Errorf("%s: names nobody; set users, groups or anonymous: true", key))
	}
	if r.Anonymous && strings.HasPrefix(r.Repository, personal) {
		errs = append(errs, fmt.Errorf("%s: anonymous callers have no personal namespace (~/)", key))
	}
	for j, g := range r.Groups {
		if _, ok := groups[g]; !ok {
			errs = append(errs, fmt.Errorf("%s.groups[%d]: group %q is not defined in groups", key, j, g))
		}
	}
	if len(r.Actions) == 0 {
		errs = append(errs, fmt.Errorf("%s.actions: required (pull, push, delete or *)", key))
	}
	for j, a := range r.Actions {
		switch a {
		case scope.ActionPull, scope.ActionPush, scope.ActionDelete, scope.ActionAll:
		default:
			errs = append(errs, fmt.Errorf("%s.actions[%d]: unknown action %q (want pull, push, delete or *)", key, j, a))
		}
	}
	return errors.Join(errs...)
}

// Policy is a validated Config, ready to answer. It is immutable; a reload
// builds a new one.
type Policy struct {
	open   bool                // no rules: every authenticated user may do everything
	member map[string][]string // user -> groups
	rules  []Rule
}

// New validates cfg and builds its policy.
func New(cfg Config) (*Policy, error) {
	if err := cfg.Validate("auth.access"); err != nil {
		return nil, err
	}
	p := &Policy{open: len(cfg.Rules) == 0, member: map[string][]string{}, rules: slices.Clone(cfg.Rules)}
	for g, members := range cfg.Groups {
		for _, m := range members {
			if !slices.Contains(p.member[m], g) {
				p.member[m] = append(p.member[m], g)
			}
		}
	}
	for _, gs := range p.member {
		slices.Sort(gs)
	}
	return p, nil
}

// Groups are the groups user belongs to, sorted.
func (p *Policy) Groups(user string) []string { return slices.Clone(p.member[user]) }

// Actions are what user ("" for anonymous) may do to the resource: a
// repository name, or the catalog when typ is scope.TypeRegistry and name
// scope.CatalogName. The answer is "*" or a subset of pull, push, delete.
func (p *Policy) Actions(user, typ, name string) []string {
	catalog := typ == scope.TypeRegistry && name == scope.CatalogName
	if typ != scope.TypeRepository && !catalog {
		return nil
	}
	if p.open {
		if user == "" {
			return nil
		}
		return []string{scope.ActionAll}
	}
	var out []string
	for _, r := range p.rules {
		if !p.names(r, user) || !matches(r, user, name, catalog) {
			continue
		}
		for _, a := range r.Actions {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if slices.Contains(out, scope.ActionAll) {
		return []string{scope.ActionAll}
	}
	return out
}

// Allows reports whether user may do action to the resource.
func (p *Policy) Allows(user, typ, name, action string) bool {
	return scope.Scope{Actions: p.Actions(user, typ, name)}.Allows(action)
}

// Grant is what of asked user may have: each asked scope cut down to the
// actions the policy allows on its resource.
func (p *Policy) Grant(user string, asked []scope.Scope) []scope.Scope {
	allowed := make([]scope.Scope, 0, len(asked))
	for _, a := range scope.Merge(asked) {
		allowed = append(allowed, scope.Scope{Type: a.Type, Name: a.Name, Actions: p.Actions(user, a.Type, a.Name)})
	}
	return scope.Intersect(asked, allowed)
}

// names reports whether the rule applies to user.
func (p *Policy) names(r Rule, user string) bool {
	if user == "" {
		return r.Anonymous
	}
	if slices.Contains(r.Users, user) || slices.Contains(r.Users, Anyone) {
		return true
	}
	for _, g := range r.Groups {
		if slices.Contains(p.member[user], g) {
			return true
		}
	}
	return false
}

// matches reports whether the rule covers the resource for user.
func matches(r Rule, user, name string, catalog bool) bool {
	if catalog || r.Catalog {
		return catalog && r.Catalog
	}
	pattern := r.Repository
	if rest, ok := strings.CutPrefix(pattern, personal); ok {
		if !component.MatchString(user) {
			return false
		}
		// The user name is one plain component (no glob characters), so
		// the expanded pattern is exactly the user's namespace.
		pattern = user + "/" + rest
	}
	ok, err := doublestar.Match(pattern, name)
	return err == nil && ok
}
