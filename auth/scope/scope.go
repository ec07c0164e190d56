// Package scope parses and combines the resource scopes of the Docker
// registry token specification ("repository:team/app:pull,push"). Both the
// challenge a registry sends and the access claim a token carries are made
// of them, so the token verifier, the built-in issuer and the authorizer
// share this one definition.
package scope

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Resource types and actions the registry knows. Others parse (the spec
// lets issuers invent them) but grant nothing here.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"

	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*"

	// CatalogName is the registry resource the catalog needs
	// ("registry:catalog:*").
	CatalogName = "catalog"
)

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed scope")

// Scope is one resource and the actions asked for or granted on it. The
// JSON names are those of a token's access claim entries.
type Scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

var (
	// typePattern allows the optional class: "repository(plugin)".
	typePattern   = regexp.MustCompile(`^[a-z0-9]+(\([a-z0-9]+\))?$`)
	actionPattern = regexp.MustCompile(`^([a-z]+|\*)$`)
)

// maxLength bounds one scope string; names are at most 255 characters
// by the distribution spec and the rest is a handful of actions.
const maxLength = 1024

// Parse reads one resource scope. The resource name may itself hold a
// colon (a "host:port/" prefix), so the type ends at the first colon and
// the actions start after the last one.
func Parse(s string) (Scope, error) {
	if len(s) > maxLength {
		return Scope{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxLength)
	}
	first, last := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Scope{}, fmt.Errorf("%w %q: want type:name:actions", ErrMalformed, s)
	}
	sc := Scope{Type: s[:first], Name: s[first+1 : last]}
	if !typePattern.MatchString(sc.Type) {
		return Scope{}, fmt.Errorf("%w %q: bad resource type %q", ErrMalformed, s, sc.Type)
	}
	if sc.Name == "" || strings.ContainsFunc(sc.Name, badNameRune) {
		return Scope{}, fmt.Errorf("%w %q: bad resource name", ErrMalformed, s)
	}
	for _, a := range strings.Split(s[last+1:], ",") {
		if a == "" {
			continue // "repository:x:" asks for nothing, as the spec's grammar allows
		}
		if !actionPattern.MatchString(a) {
			return Scope{}, fmt.Errorf("%w %q: bad action %q", ErrMalformed, s, a)
		}
		if !slices.Contains(sc.Actions, a) {
			sc.Actions = append(sc.Actions, a)
		}
	}
	return sc, nil
}

func badNameRune(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' || r == '\\' }

// ParseAll reads scope parameters: each value may hold several scopes
// separated by spaces (docker sends one parameter, containerd several).
// Scopes on the same resource are merged.
func ParseAll(values ...string) ([]Scope, error) {
	var out []Scope
	for _, v := range values {
		for _, f := range strings.Fields(v) {
			sc, err := Parse(f)
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
		}
	}
	return Merge(out), nil
}

// String formats the scope as it appears in a challenge or a request.
func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Allows reports whether the scope covers action; "*" covers every one.
func (s Scope) Allows(action string) bool {
	return slices.Contains(s.Actions, action) || slices.Contains(s.Actions, ActionAll)
}

// Merge joins scopes on the same resource, keeping the first-seen order of
// resources and actions, and drops scopes left with no action.
func Merge(scopes []Scope) []Scope {
	var out []Scope
	for _, sc := range scopes {
		i := slices.IndexFunc(out, func(o Scope) bool { return o.Type == sc.Type && o.Name == sc.Name })
		if i < 0 {
			out = append(out, Scope{Type: sc.Type, Name: sc.Name})
			i = len(out) - 1
		}
		for _, a := range sc.Actions {
			if !slices.Contains(out[i].Actions, a) {
				out[i].Actions = append(out[i].Actions, a)
			}
		}
	}
	out = slices.DeleteFunc(out, func(s Scope) bool { return len(s.Actions) == 0 })
	if len(out) == 0 {
		return nil
	}
	return out
}

// Intersect is what of asked the granted scopes cover: an asked "*" is
// granted only where "*" is granted, while a granted "*" covers every
// asked action.
func Intersect(asked, granted []Scope) []Scope {
	var out []Scope
	for _, a := range Merge(asked) {
		keep := Scope{Type: a.Type, Name: a.Name}
		for _, action := range a.Actions {
			for _, g := range granted {
				if g.Type == a.Type && g.Name == a.Name && g.Allows(action) {
					keep.Actions = append(keep.Actions, action)
					break
				}
			}
		}
		out = append(out, keep)
	}
	return Merge(out)
}

// Join formats scopes for a challenge's scope parameter: space-separated.
func Join(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}
