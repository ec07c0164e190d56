package retention

import (
	"time"

	"github.com/stratus-registry/stratus/registry/gc"
)

// ForGC is the policy in the shape the GC pass declares (registry
// packages import no policy package, so the conversion lives here).
func (p *Policy) ForGC() gc.Retention { return gcAdapter{p} }

type gcAdapter struct{ p *Policy }

func (a gcAdapter) Decide(repo string, tags []gc.Tag, now time.Time) []gc.TagDecision {
	in := make([]Tag, len(tags))
	for i, t := range tags {
		in[i] = Tag{Name: t.Name, ModTime: t.ModTime}
	}
	ds := a.p.Decide(repo, in, now)
	if ds == nil {
		return nil
	}
	out := make([]gc.TagDecision, len(ds))
	for i, d := range ds {
		out[i] = gc.TagDecision{Tag: d.Tag, Delete: d.Delete, Reason: d.Reason}
	}
	return out
}

func (a gcAdapter) UntaggedAge(repo string) (time.Duration, bool) { return a.p.UntaggedAge(repo) }
