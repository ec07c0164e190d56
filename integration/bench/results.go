package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Units of a metric. Throughput units are "higher is better"; the others
// are "lower is better".
const (
	unitMBps  = "MB/s"   // 10^6 bytes per second of wall time
	unitOps   = "ops/s"  // operations per second of wall time
	unitMs    = "ms"     // p50 latency
	unitMiB   = "MiB"    // peak resident memory
	unitTimes = "x"      // a ratio of two byte counts (write amplification)
	unitCPU   = "CPU ms" // CPU time per operation (num ns / den operations)
	unitNA    = "n/a"
)

// metricDef describes one row group of the table.
type metricDef struct {
	Name  string
	Unit  string
	Limit string // metric whose "direct" participant is the ceiling, "" if none
}

// acc collects the samples of one (backend, metric, participant).
type acc struct {
	bytes   int64
	ops     int
	elapsed time.Duration
	lats    []time.Duration
	peaks   map[string]int64 // process -> peak RSS bytes
	num     int64            // unitTimes, unitCPU: num / den
	den     int64
	note    string       // replaces the value: why there is none
	remark  string       // next to the value
	byRound map[int]*acc // the same samples, split by round
}

// inRound is the accumulator of round n's share of a's samples.
func (a *acc) inRound(n int) *acc {
	if a.byRound == nil {
		a.byRound = make(map[int]*acc)
	}
	ar := a.byRound[n]
	if ar == nil {
		ar = &acc{peaks: make(map[string]int64)}
		a.byRound[n] = ar
	}
	return ar
}

// results gathers everything a run measured. All methods are safe for
// concurrent use.
type results struct {
	mu      sync.Mutex
	metrics map[string][]metricDef // backend -> metrics in first-seen order
	accs    map[[3]string]*acc     // backend, metric, participant
	errs    []RunError
	round   int // the round samples now belong to (rounds run one at a time)
}

// setRound files the samples that follow under round n.
func (r *results) setRound(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.round = n
}

func newResults() *results {
	return &results{metrics: make(map[string][]metricDef), accs: make(map[[3]string]*acc)}
}

func (r *results) get(backend string, m metricDef, participant string) *acc {
	if !slices.ContainsFunc(r.metrics[backend], func(d metricDef) bool { return d.Name == m.Name }) {
		r.metrics[backend] = append(r.metrics[backend], m)
	}
	k := [3]string{backend, m.Name, participant}
	a := r.accs[k]
	if a == nil {
		a = &acc{peaks: make(map[string]int64)}
		r.accs[k] = a
	}
	return a
}

// throughput adds one timed batch that moved bytes in ops operations.
func (r *results) throughput(backend string, m metricDef, participant string, bytes int64, ops int, elapsed time.Duration, lats []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := r.get(backend, m, participant)
	for _, a := range []*acc{base, base.inRound(r.round)} {
		a.bytes += bytes
		a.ops += ops
		a.elapsed += elapsed
		a.lats = append(a.lats, lats...)
	}
}

// latency adds latency samples only.
func (r *results) latency(backend string, m metricDef, participant string, lats ...time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := r.get(backend, m, participant)
	for _, a := range []*acc{base, base.inRound(r.round)} {
		a.lats = append(a.lats, lats...)
		a.ops += len(lats)
	}
}

// peak records peak RSS per process.
func (r *results) peak(backend string, m metricDef, participant string, peaks map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := r.get(backend, m, participant)
	for _, a := range []*acc{base, base.inRound(r.round)} {
		for k, v := range peaks {
			a.peaks[k] = max(a.peaks[k], v)
		}
		a.ops++
	}
}

// ratio adds num / den samples (bytes written per byte stored).
func (r *results) ratio(backend string, m metricDef, participant string, num, den int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := r.get(backend, m, participant)
	for _, a := range []*acc{base, base.inRound(r.round)} {
		a.num += num
		a.den += den
		a.ops++
	}
}

// roundValues is one participant's value in each round so far.
func (r *results) roundValues(backend string, m metricDef, participant string) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.accs[[3]string{backend, m.Name, participant}]
	if a == nil {
		return nil
	}
	v, _ := a.roundValues(m.Unit, nil)
	return v
}

// addRemark appends to a row's remark.
func (r *results) addRemark(backend string, m metricDef, participant, remark string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.get(backend, m, participant)
	if a.remark != "" {
		a.remark += "; "
	}
	a.remark += remark
}

// note sets a text result (a row that could not be measured).
func (r *results) setNote(backend string, m metricDef, participant, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.get(backend, m, participant).note = note
}

// value is the current result of one participant on one metric.
func (r *results) value(backend string, m metricDef, participant string) (float64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.accs[[3]string{backend, m.Name, participant}]
	if a == nil {
		return 0, false
	}
	return a.value(m.Unit)
}

// annotate attaches a remark to a measured row.
func (r *results) annotate(backend string, m metricDef, participant, remark string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.get(backend, m, participant).remark = remark
}

func (r *results) fail(backend, task, participant string, round int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, RunError{Backend: backend, Task: task, Contender: participant, Round: round, Error: err.Error()})
}

// Row is one line of the published table.
type Row struct {
	Backend   string  `json:"backend"`
	Workload  string  `json:"workload"`
	Contender string  `json:"contender"`
	Unit      string  `json:"unit"`
	Value     float64 `json:"value"`
	P50Ms     float64 `json:"p50_ms,omitempty"`
	P99Ms     float64 `json:"p99_ms,omitempty"`
	Samples   int     `json:"samples"`
	// VsReference is Value / the reference registry's Value for the same
	// workload: above 1 is better for MB/s and ops/s, below 1 for ms and MiB.
	VsReference *float64 `json:"vs_reference,omitempty"`
	// VsLimit is Value / the direct-to-backend Value (throughput only).
	VsLimit *float64 `json:"vs_limit,omitempty"`
	// Note, when set, replaces the value (why the row has none).
	Note string `json:"note,omitempty"`
	// Remark qualifies the value.
	Remark string `json:"remark,omitempty"`
	// Rounds is the value of each round alone ("R1 / R2"), in round order.
	Rounds []float64 `json:"rounds,omitempty"`
	// RoundsVsReference is each round's value / the reference's in the
	// same round.
	RoundsVsReference []float64 `json:"rounds_vs_reference,omitempty"`
}

// RunError is a task that failed for one contender in one round; the run
// goes on and the affected rows have fewer samples (or none).
type RunError struct {
	Backend   string `json:"backend"`
	Task      string `json:"task"`
	Contender string `json:"contender"`
	Round     int    `json:"round"`
	Error     string `json:"error"`
}

func percentile(lats []time.Duration, p float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rows turns the samples into table rows, participants in the given order.
func (r *results) rows(backends, participants []string) []Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Row
	for _, b := range backends {
		for _, m := range r.metrics[b] {
			value := func(p string) (float64, bool) {
				a := r.accs[[3]string{b, m.Name, p}]
				if a == nil || a.note != "" {
					return 0, false
				}
				return a.value(m.Unit)
			}
			ref, refOK := value("reference")
			lim, limOK := 0.0, false
			if m.Limit != "" {
				if a := r.accs[[3]string{b, m.Limit, "direct"}]; a != nil {
					lim, limOK = a.value(unitMBps)
				}
			}
			for _, p := range participants {
				a := r.accs[[3]string{b, m.Name, p}]
				if a == nil {
					continue
				}
				row := Row{Backend: b, Workload: m.Name, Contender: p, Unit: m.Unit, Samples: a.ops, Note: a.note, Remark: a.remark}
				if v, ok := value(p); ok {
					row.Value = v
					if refOK && ref > 0 && p != "reference" && p != "direct" {
						x := v / ref
						row.VsReference = &x
					}
					if limOK && lim > 0 && p != "direct" {
						x := v / lim
						row.VsLimit = &x
					}
				} else if row.Note == "" {
					row.Note = "no successful sample"
				}
				if p != "reference" && p != "direct" && refOK {
					row.Rounds, row.RoundsVsReference = a.roundValues(m.Unit, r.accs[[3]string{b, m.Name, "reference"}])
				} else {
					row.Rounds, _ = a.roundValues(m.Unit, nil)
				}
				if len(a.lats) > 0 {
					row.P50Ms = ms(percentile(a.lats, 0.50))
					row.P99Ms = ms(percentile(a.lats, 0.99))
				}
				if len(a.peaks) > 1 {
					names := make([]string, 0, len(a.peaks))
					for k := range a.peaks {
						names = append(names, k)
					}
					sort.Strings(names)
					var parts []string
					for _, k := range names {
						parts = append(parts, fmt.Sprintf("%s %.0f", k, float64(a.peaks[k])/(1<<20)))
					}
					row.Remark = "per process MiB: " + strings.Join(parts, ", ")
				}
				out = append(out, row)
			}
		}
	}
	return out
}

func (a *acc) value(unit string) (float64, bool) {
	switch unit {
	case unitMBps:
		if a.elapsed <= 0 || a.bytes == 0 {
			return 0, false
		}
		return float64(a.bytes) / 1e6 / a.elapsed.Seconds(), true
	case unitOps:
		if a.elapsed <= 0 || a.ops == 0 {
			return 0, false
		}
		return float64(a.ops) / a.elapsed.Seconds(), true
	case unitMs:
		if len(a.lats) == 0 {
			return 0, false
		}
		return ms(percentile(a.lats, 0.5)), true
	case unitTimes:
		if a.den == 0 {
			return 0, false
		}
		return float64(a.num) / float64(a.den), true
	case unitCPU:
		if a.den == 0 {
			return 0, false
		}
		return float64(a.num) / 1e6 / float64(a.den), true
	case unitMiB:
		var m int64
		for _, v := range a.peaks {
			m = max(m, v)
		}
		if m == 0 {
			return 0, false
		}
		return float64(m) / (1 << 20), true
	}
	return 0, false
}

// roundValues is a's value in each round, and its ratio to ref's value in
// the same round (nil without ref). A round without a value is 0.
func (a *acc) roundValues(unit string, ref *acc) (vals, ratios []float64) {
	ns := make([]int, 0, len(a.byRound))
	for n := range a.byRound {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	for _, n := range ns {
		v, _ := a.byRound[n].value(unit)
		vals = append(vals, v)
		if ref == nil {
			continue
		}
		x := 0.0
		if rr := ref.byRound[n]; rr != nil {
			if rv, ok := rr.value(unit); ok && rv > 0 {
				x = v / rv
			}
		}
		ratios = append(ratios, x)
	}
	return vals, ratios
}
