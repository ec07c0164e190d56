package retention

import (
	"strings"
	"testing"
	"time"
)

type fakeImmutable map[string]bool

func (f fakeImmutable) Immutable(_, tag string) (string, bool) { return "rule-x", f[tag] }

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tags := []Tag{ // deliberately out of age order
		{"old-1", now.Add(-40 * day)},
		{"new-1", now.Add(-1 * day)},
		{"release-1", now.Add(-90 * day)},
		{"new-2", now.Add(-2 * day)},
		{"mid", now.Add(-10 * day)},
		{"pinned", now.Add(-50 * day)},
	}
	cases := []struct {
		name string
		rule Rule
		want map[string]string // tag -> "delete: reason" or "keep: reason"
	}{
		{"newest, patterns and age", Rule{Repository: "ci/**", KeepNewest: 2, KeepTags: []string{"release-*"}, DeleteOlderThan: 30 * day},
			map[string]string{"new-1": "keep: kept, newest 2", "new-2": "keep: kept, newest 2", "mid": "keep: kept, younger than 30d",
				"old-1": "delete: older than 30d", "release-1": "keep: kept, matches release-*", "pinned": "keep: kept, immutable (rule-x)"}},
		{"count only", Rule{Repository: "ci/**", KeepNewest: 3},
			map[string]string{"new-1": "keep: kept, newest 3", "new-2": "keep: kept, newest 3", "mid": "keep: kept, newest 3",
				"old-1": "delete: not among the newest 3", "release-1": "delete: not among the newest 3", "pinned": "keep: kept, immutable (rule-x)"}},
		{"age only", Rule{Repository: "ci/**", DeleteOlderThan: 36 * time.Hour},
			map[string]string{"new-1": "keep: kept, younger than 36h0m0s", "new-2": "delete: older than 36h0m0s", "mid": "delete: older than 36h0m0s",
				"old-1": "delete: older than 36h0m0s", "release-1": "delete: older than 36h0m0s", "pinned": "keep: kept, immutable (rule-x)"}},
		{"untagged only", Rule{Repository: "ci/**", KeepUntaggedFor: day},
			map[string]string{"new-1": "keep: kept, the rule limits no tags", "new-2": "keep: kept, the rule limits no tags", "mid": "keep: kept, the rule limits no tags",
				"old-1": "keep: kept, the rule limits no tags", "release-1": "keep: kept, the rule limits no tags", "pinned": "keep: kept, the rule limits no tags"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New([]Rule{c.rule}, fakeImmutable{"pinned": true})
			if err != nil {
				t.Fatal(err)
			}
			got := p.Decide("ci/app", tags, now)
			if len(got) != len(tags) {
				t.Fatalf("%d decisions for %d tags", len(got), len(tags))
			}
			for _, d := range got {
				s := "keep: " + d.Reason
				if d.Delete {
					s = "delete: " + d.Reason
				}
				if s != c.want[d.Tag] {
					t.Errorf("%s: %q, want %q", d.Tag, s, c.want[d.Tag])
				}
			}
			if p.Decide("other/app", tags, now) != nil {
				t.Error("a repository no rule matches got decisions")
			}
		})
	}
}

func TestUntaggedAge(t *testing.T) {
	p, err := New([]Rule{{Repository: "ci/**", KeepNewest: 1, KeepUntaggedFor: time.Hour}, {Repository: "tmp/*", KeepNewest: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		repo string
		age  time.Duration
		ok   bool
	}{{"ci/a/b", time.Hour, true}, {"tmp/x", 0, true}, {"tmp/x/y", 0, false}, {"prod/x", 0, false}} {
		if age, ok := p.UntaggedAge(c.repo); age != c.age || ok != c.ok {
			t.Errorf("%s: %s %v, want %s %v", c.repo, age, ok, c.age, c.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	errs := Validate("policies.retention", []Rule{
		{Repository: "ok/**", KeepNewest: 1},
		{Repository: "", KeepNewest: -1, DeleteOlderThan: -time.Hour, KeepUntaggedFor: -1},
		{Repository: "x[", KeepTags: []string{"release-*", "y["}},
	})
	want := []string{
		"policies.retention[1].repository: required",
		"policies.retention[1].keep_newest",
		"policies.retention[1].delete_older_than",
		"policies.retention[1].keep_untagged_for",
		"policies.retention[2].repository",
		"policies.retention[2].keep_tags: has no effect",
		"policies.retention[2].keep_tags[1]",
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

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{720 * time.Hour: "30d", 24 * time.Hour: "1d", 36 * time.Hour: "36h0m0s", time.Minute: "1m0s"} {
		if got := FormatAge(d); got != want {
			t.Errorf("FormatAge(%s) = %q, want %q", d, got, want)
		}
	}
}
