package notifications

import "github.com/bmatcuk/doublestar/v4"

// matches reports whether the endpoint wants the event. Patterns were
// validated with the configuration, so a match error cannot occur.
func (f *Filters) matches(q *queued) bool {
	e := &q.Event
	if len(f.Actions) > 0 && !contains(f.Actions, e.Action) {
		return false
	}
	if len(f.Repositories) > 0 && !anyGlob(f.Repositories, e.Target.Repository) {
		return false
	}
	if len(f.MediaTypes) > 0 && e.Target.MediaType != "" && !anyGlob(f.MediaTypes, e.Target.MediaType) {
		return false
	}
	return true
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := doublestar.Match(p, s); ok {
			return true
		}
	}
	return false
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
