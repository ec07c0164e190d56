package immutable

import (
	"errors"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	p, err := New([]Rule{
		{Repository: "prod/**", Tags: []string{"v*", "release-[0-9]*"}},
		{Repository: "team/*/stable", Tags: []string{"*"}, AllowDelete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		repo, tag string
		immutable bool
		deletable bool
	}{
		{"prod", "v1", true, false},
		{"prod/app", "v1.2.3", true, false},
		{"prod/a/b", "release-7", true, false},
		{"prod/app", "latest", false, true},
		{"prod/app", "release-x", false, true},
		{"production/app", "v1", false, true},
		{"team/x/stable", "anything", true, true},
		{"team/x/y/stable", "anything", false, true},
	}
	for _, c := range cases {
		rule, ok := p.Immutable(c.repo, c.tag)
		if ok != c.immutable {
			t.Errorf("%s:%s immutable = %v, want %v", c.repo, c.tag, ok, c.immutable)
		}
		if ok && !strings.Contains(rule, "repository=") {
			t.Errorf("%s:%s rule name %q", c.repo, c.tag, rule)
		}
		err := p.CheckDelete(c.repo, c.tag)
		var de *DeniedError
		if (err == nil) != c.deletable || (err != nil && !errors.As(err, &de)) {
			t.Errorf("%s:%s CheckDelete = %v, deletable %v", c.repo, c.tag, err, c.deletable)
		}
	}
	if !p.CoversRepository("prod/x") || p.CoversRepository("dev/x") {
		t.Error("CoversRepository")
	}
	var none *Policy
	if _, ok := none.Immutable("prod", "v1"); ok || none.CheckDelete("prod", "v1") != nil {
		t.Error("a nil policy must allow everything")
	}
}

func TestValidate(t *testing.T) {
	errs := Validate("policies.immutable_tags", []Rule{
		{Repository: "ok/**", Tags: []string{"v*"}},
		{Repository: "", Tags: nil},
		{Repository: "bad[", Tags: []string{"", "x["}},
	})
	want := []string{
		"policies.immutable_tags[1].repository: required",
		"policies.immutable_tags[1].tags: at least one",
		"policies.immutable_tags[2].repository: \"bad[\" is not a valid glob",
		"policies.immutable_tags[2].tags[0]",
		"policies.immutable_tags[2].tags[1]: \"x[\"",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
		}
	}
}
