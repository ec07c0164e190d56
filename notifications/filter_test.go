package notifications

import "testing"

func TestFilters(t *testing.T) {
	ev := func(a Action, repo, mt string) *queued {
		return &queued{Kind: KindManifest, Event: Event{Action: a, Target: Target{Repository: repo, MediaType: mt}}}
	}
	const oci = "application/vnd.oci.image.manifest.v1+json"
	tests := []struct {
		name string
		f    Filters
		e    *queued
		want bool
	}{
		{"empty matches all", Filters{}, ev(ActionPull, "a", oci), true},
		{"action listed", Filters{Actions: []Action{ActionPush, ActionDelete}}, ev(ActionPush, "a", oci), true},
		{"action not listed", Filters{Actions: []Action{ActionPush}}, ev(ActionPull, "a", oci), false},
		{"double star spans components", Filters{Repositories: []string{"team/**"}}, ev(ActionPush, "team/x/y", oci), true},
		{"single star stays in a component", Filters{Repositories: []string{"team/*"}}, ev(ActionPush, "team/x/y", oci), false},
		{"glob misses other prefix", Filters{Repositories: []string{"team/**"}}, ev(ActionPush, "other/x", oci), false},
		{"any of several globs", Filters{Repositories: []string{"x", "*/app"}}, ev(ActionPush, "team/app", oci), true},
		{"media type glob", Filters{MediaTypes: []string{"application/vnd.oci.image.*"}}, ev(ActionPush, "a", oci), true},
		{"media type miss", Filters{MediaTypes: []string{"application/vnd.docker.*"}}, ev(ActionPush, "a", oci), false},
		{"no media type passes a media type filter", Filters{MediaTypes: []string{"application/vnd.docker.*"}}, ev(ActionDelete, "a", ""), true},
		{"all conditions", Filters{Actions: []Action{ActionPush}, Repositories: []string{"a/**"}, MediaTypes: []string{oci}}, ev(ActionPush, "a/b", oci), true},
		{"one condition fails", Filters{Actions: []Action{ActionPush}, Repositories: []string{"a/**"}, MediaTypes: []string{oci}}, ev(ActionPush, "b/b", oci), false},
	}
	for _, tt := range tests {
		if got := tt.f.matches(tt.e); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
