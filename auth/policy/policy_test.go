package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/auth/scope"
)

func orgPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := New(Config{
		Groups: map[string][]string{"team-a": {"alice", "bob"}, "ops": {"olga"}},
		Rules: []Rule{
			{Repository: "public/**", Anonymous: true, Users: []string{Anyone}, Actions: []string{"pull"}},
			{Repository: "public/**", Groups: []string{"ops"}, Actions: []string{"push", "delete"}},
			{Repository: "team-a/**", Groups: []string{"team-a"}, Actions: []string{"pull", "push", "delete"}},
			{Repository: "~/**", Users: []string{Anyone}, Actions: []string{"*"}},
			{Repository: "*/base", Users: []string{"carol"}, Actions: []string{"pull"}},
			{Catalog: true, Users: []string{Anyone}, Actions: []string{"*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestActions(t *testing.T) {
	p := orgPolicy(t)
	for _, tc := range []struct {
		user, typ, name string
		want            []string
	}{
		{"", "repository", "public/tools/curl", []string{"pull"}},
		{"", "repository", "public", []string{"pull"}}, // doublestar: "public/**" covers "public" itself
		{"", "repository", "publicity/x", nil},
		{"", "repository", "team-a/app", nil},
		{"", "repository", "alice/app", nil},
		{"", "registry", "catalog", nil},
		{"alice", "repository", "public/x", []string{"pull"}},
		{"alice", "repository", "team-a/app", []string{"pull", "push", "delete"}},
		{"alice", "repository", "team-a/deep/er/app", []string{"pull", "push", "delete"}},
		{"alice", "repository", "team-b/app", nil},
		{"alice", "repository", "alice/app", []string{"*"}},
		{"alice", "repository", "alice", []string{"*"}},
		{"alice", "repository", "alicex/app", nil},
		{"alice", "repository", "bob/app", nil},
		{"bob", "repository", "bob/app", []string{"*"}},
		{"olga", "repository", "public/x", []string{"pull", "push", "delete"}},
		{"olga", "repository", "team-a/app", nil},
		{"carol", "repository", "team-a/base", []string{"pull"}},
		{"carol", "repository", "team-a/x/base", nil}, // * stops at a slash
		{"carol", "registry", "catalog", []string{"*"}},
		{"carol", "registry", "other", nil},
		{"carol", "plugin", "x", nil},
		// A user name that is not one plain name component owns no
		// namespace, so it cannot widen the pattern.
		{"*", "repository", "alice/app", nil},
		{"a/b", "repository", "a/b/app", nil},
		{"Dave", "repository", "dave/app", nil},
	} {
		if got := p.Actions(tc.user, tc.typ, tc.name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Actions(%q, %s:%s) = %v, want %v", tc.user, tc.typ, tc.name, got, tc.want)
		}
	}
	if g := p.Groups("alice"); !reflect.DeepEqual(g, []string{"team-a"}) {
		t.Errorf("alice's groups: %v", g)
	}
}

func TestNoRulesIsOpenToAuthenticatedUsers(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, typ, name, action string
		want                    bool
	}{
		{"alice", "repository", "any/thing", "delete", true},
		{"alice", "registry", "catalog", "*", true},
		{"", "repository", "any/thing", "pull", false},
		{"", "registry", "catalog", "*", false},
	} {
		if got := p.Allows(tc.user, tc.typ, tc.name, tc.action); got != tc.want {
			t.Errorf("Allows(%q, %s:%s:%s) = %v, want %v", tc.user, tc.typ, tc.name, tc.action, got, tc.want)
		}
	}
}

func TestGrant(t *testing.T) {
	p := orgPolicy(t)
	asked, err := scope.ParseAll("repository:team-a/app:pull,push,delete repository:public/x:pull,push registry:catalog:* repository:team-b/y:pull")
	if err != nil {
		t.Fatal(err)
	}
	got := scope.Join(p.Grant("alice", asked))
	if want := "repository:team-a/app:pull,push,delete repository:public/x:pull registry:catalog:*"; got != want {
		t.Errorf("alice granted %q, want %q", got, want)
	}
	if got := scope.Join(p.Grant("", asked)); got != "repository:public/x:pull" {
		t.Errorf("anonymous granted %q", got)
	}
	// An asked "*" is granted only where "*" is allowed.
	star, _ := scope.ParseAll("repository:team-a/app:* repository:alice/app:*")
	if got := scope.Join(p.Grant("alice", star)); got != "repository:alice/app:*" {
		t.Errorf("alice granted %q for *", got)
	}
}

func TestValidate(t *testing.T) {
	cfg := Config{
		Groups: map[string][]string{"a": {"x", ""}},
		Rules: []Rule{
			{Repository: "ok/**", Users: []string{"x"}, Actions: []string{"pull"}},
			{Repository: "[", Users: []string{"x"}, Actions: []string{"pull"}},
			{Users: []string{"x"}, Actions: []string{"pull"}},
			{Repository: "x/**", Actions: []string{"pull"}},
			{Repository: "x/**", Groups: []string{"nope"}, Actions: []string{"pull", "write"}},
			{Repository: "~/**", Anonymous: true, Actions: []string{"pull"}},
			{Repository: "x", Catalog: true, Users: []string{"x"}},
		},
	}
	err := cfg.Validate("auth.access")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`auth.access.groups.a[1]: "" is not a user name`,
		`auth.access.rules[1].repository: "[" is not a valid glob`,
		"auth.access.rules[2].repository: required",
		"auth.access.rules[3]: names nobody",
		`auth.access.rules[4].groups[0]: group "nope" is not defined`,
		`auth.access.rules[4].actions[1]: unknown action "write"`,
		"auth.access.rules[5]: anonymous callers have no personal namespace",
		"auth.access.rules[6]: set repository or catalog, not both",
		"auth.access.rules[6].actions: required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "rules[0]") {
		t.Errorf("a good rule was reported: %v", err)
	}
	if _, err := New(cfg); err == nil {
		t.Error("New accepted an invalid config")
	}
}
