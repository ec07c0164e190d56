package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Report is results.json.
type Report struct {
	Mode      string            `json:"mode"`
	Command   string            `json:"command"`
	Started   string            `json:"started"`
	Duration  string            `json:"duration"`
	Machine   Machine           `json:"machine"`
	Versions  map[string]string `json:"versions"`
	Profile   profile           `json:"profile"`
	Backends  []string          `json:"backends"`
	Contender map[string]string `json:"contenders"`
	GC        bool              `json:"gc_available"`
	Rows      []Row             `json:"rows"`
	Errors    []RunError        `json:"errors"`
}

// Machine describes where the numbers come from.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemTotal string `json:"mem_total"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		if n, err := strconv.ParseInt(strings.Fields(kb)[0], 10, 64); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "key: value" line.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func versions(ctx context.Context, tl tools) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out := map[string]string{}
	try := func(name, bin string, args ...string) {
		if bin == "" {
			return
		}
		b, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err == nil {
			out[name] = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
		}
	}
	try("stratus", tl.Stratus, "version")
	try("reference", tl.Reference, "--version")
	try("minio", tl.Minio, "--version")
	try("redis", tl.Redis, "--version")
	if b, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		out["stratus_commit"] = strings.TrimSpace(string(b))
	}
	return out
}

func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644)
}

func fmtValue(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtRatio(x *float64) string {
	if x == nil {
		return ""
	}
	return strconv.FormatFloat(*x, 'f', 2, 64) + "x"
}

// cells is one table line as text.
func (row Row) cells() []string {
	val := row.Note
	if row.Note == "" {
		val = fmtValue(row.Value) + " " + row.Unit
	}
	lat := func(v float64) string {
		if v == 0 {
			return ""
		}
		return fmtValue(v)
	}
	note := row.Remark
	return []string{row.Backend, row.Workload, row.Contender, val, lat(row.P50Ms), lat(row.P99Ms),
		fmtRatio(row.VsReference), fmtRatio(row.VsLimit), row.perRound(), strconv.Itoa(row.Samples), note}
}

// perRound is "R1 / R2": each round's ratio to the reference when there is
// one, else each round's value.
func (row Row) perRound() string {
	if len(row.Rounds) < 2 {
		return ""
	}
	var parts []string
	if len(row.RoundsVsReference) == len(row.Rounds) {
		for _, x := range row.RoundsVsReference {
			parts = append(parts, fmtRatio(&x))
		}
	} else {
		for _, v := range row.Rounds {
			parts = append(parts, fmtValue(v))
		}
	}
	return strings.Join(parts, " / ")
}

var header = []string{"backend", "workload", "contender", "result", "p50 ms", "p99 ms", "vs reference", "vs limit", "R1 / R2", "n", "note"}

func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Stratus benchmark (%s mode)\n\n", r.Mode)
	fmt.Fprintf(&b, "`%s`, started %s, took %s.\n\n", r.Command, r.Started, r.Duration)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s, %s RAM, Linux %s, %s.\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.Go)
	if len(r.Versions) > 0 {
		var vs []string
		for _, k := range []string{"stratus", "stratus_commit", "reference", "minio", "redis"} {
			if v, ok := r.Versions[k]; ok {
				vs = append(vs, k+": "+v)
			}
		}
		fmt.Fprintf(&b, "Versions: %s.\n\n", strings.Join(vs, "; "))
	}
	b.WriteString("MB/s and ops/s: higher is better; ms (p50 of the commit PUT) and MiB (peak RSS): lower is better. " +
		"\"vs reference\" = result / reference's result; \"vs limit\" = result / direct-to-backend result; " +
		"\"R1 / R2\" = each round's vs reference (or, without one, each round's result). " +
		"p50/p99 are per operation (one blob push or pull, one request, one complete listing).\n\n")
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString(strings.Repeat("|---", len(header)) + "|\n")
	for _, row := range r.Rows {
		c := row.cells()
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", "\\|")
		}
		b.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	if len(r.Errors) > 0 {
		b.WriteString("\nErrors (the affected rows have fewer samples, or none):\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s / %s / %s round %d: %s\n", e.Backend, e.Task, e.Contender, e.Round, firstLine(e.Error, 300))
		}
	}
	return b.String()
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// text is the table for a terminal: aligned columns, one line per row.
func (r *Report) text() string {
	rows := [][]string{header}
	for _, row := range r.Rows {
		rows = append(rows, row.cells())
	}
	w := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			w[i] = max(w[i], len(c))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Stratus benchmark, %s mode, %s\n", r.Mode, r.Duration)
	for _, row := range rows {
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c + strings.Repeat(" ", w[i]-len(c)))
		}
		b.WriteString("\n")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "error: %s / %s / %s round %d: %s\n", e.Backend, e.Task, e.Contender, e.Round, firstLine(e.Error, 300))
	}
	return b.String()
}
