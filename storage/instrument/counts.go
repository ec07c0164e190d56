package instrument

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// OpCounts reads from g how many storage operations the wrapped drivers
// have made, by operation (the "op" label, summed over drivers). Benchmarks
// and tests take two snapshots around one request and diff them to count
// the object-store requests it costs (docs/benchmarks.md, "Requests per
// pull").
func OpCounts(g prometheus.Gatherer) (map[string]uint64, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather storage metrics: %w", err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "stratus_storage_operation_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					counts[l.GetValue()] += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return counts, nil
}

// Diff is after minus before, without the operations that did not change.
func Diff(before, after map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for op, n := range after {
		if d := n - before[op]; d > 0 {
			out[op] = d
		}
	}
	return out
}
