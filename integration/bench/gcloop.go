package main

// Garbage collection looping next to the small-blob workload, against the
// same workload without it.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// gcAvailable tells whether this build of stratus has a GC command.
func gcAvailable(ctx context.Context, bin string) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, bin, "gc", "run", "--help").Run() == nil
}

// gcCompare measures Stratus's small-blob throughput with garbage
// collection looping against the same storage and redis, alternating with
// runs without it. Without a GC command (`stratus gc run --help` fails)
// the row says so.
func (rn *runner) gcCompare(ctx context.Context) {
	if !rn.want("gc compare") {
		return
	}
	bin := rn.tl.Stratus
	m := metricDef{"GC looping / no GC (small push+pull)", unitNA, ""}
	if !gcAvailable(ctx, bin) {
		for _, p := range rn.parts {
			if p.reg != nil && strings.HasPrefix(p.name, "stratus") {
				rn.res.setNote(rn.backend, m, p.name, "n/a (GC not available: `stratus gc run --help` fails)")
			}
		}
		return
	}
	for _, p := range rn.parts {
		// Only a deployment with redis shares pins with a separate GC
		// process; stratus-1 keeps them in its own memory.
		if p.reg == nil || p.reg.name != "stratus-2rr" {
			continue
		}
		rn.gcRounds(ctx, p)
	}
}

func (rn *runner) gcRounds(ctx context.Context, p *participant) {
	with := metricDef{"push+pull 1 MiB, GC looping", unitMBps, ""}
	without := metricDef{"push+pull 1 MiB, no GC", unitMBps, ""}
	var gcStats gcCounters
	for round := 0; round < rn.prof.Rounds; round++ {
		rn.res.setRound(round)
		for k := 0; k < 2; k++ {
			// Alternate which half goes first, as for the contenders.
			gcOn := (round+k)%2 == 0
			m := without
			if gcOn {
				m = with
			}
			total, ops, el, stats, err := rn.gcHalf(ctx, p, gcOn, 1000+100*(round*2+k))
			gcStats.add(stats)
			if err != nil {
				rn.res.fail(rn.backend, "gc compare", p.name, round, err)
				continue
			}
			rn.res.throughput(rn.backend, m, p.name, total, ops, el, nil)
		}
	}
	w, okW := rn.res.value(rn.backend, with, p.name)
	wo, okWo := rn.res.value(rn.backend, without, p.name)
	if okW && okWo && wo > 0 {
		rn.res.annotate(rn.backend, with, p.name, fmt.Sprintf("%.2fx of no-GC; during the timed runs the GC replica finished %d passes (%d failed) and deleted %d objects",
			w/wo, gcStats.runs, gcStats.failures, gcStats.deleted))
	}
	if gcStats.failures > 0 {
		rn.res.fail(rn.backend, "gc compare", p.name, -1, fmt.Errorf("%d GC passes failed", gcStats.failures))
	}
}

// minGCPasses is how many passes the GC replica must finish inside the
// timed window for the comparison to measure GC at all; the window grows
// (up to gcWindowCap windows) until they have.
const (
	minGCPasses = 2
	gcWindowCap = 10
)

// gcHalf repeats the small workload for at least GCWindow, with the GC
// replica looping when gcOn, and returns the bytes moved, the operations,
// the time and the passes the GC replica finished meanwhile.
func (rn *runner) gcHalf(ctx context.Context, p *participant, gcOn bool, roundBase int) (int64, int, time.Duration, gcCounters, error) {
	var (
		gcAddr string
		before gcCounters
	)
	if gcOn {
		gcProc, addr, err := startStratus(ctx, rn.tl, "stratus-2rr-gc", append(slices.Clone(p.reg.gcArgs),
			"--set", "registry.gc.interval="+gcInterval.String(),
			"--set", "registry.gc.grace="+gcGrace.String()))
		var nr *notReadyError
		if err != nil && !errors.As(err, &nr) {
			return 0, 0, 0, gcCounters{}, err
		}
		defer gcProc.Stop()
		gcAddr = addr
		// Time the steady state: the loop sleeps one interval before its
		// first pass.
		if before, err = waitFirstGC(ctx, gcAddr); err != nil {
			return 0, 0, 0, gcCounters{}, err
		}
	}
	passes := func() (gcCounters, error) {
		if !gcOn {
			return gcCounters{}, nil
		}
		c, err := readGCCounters(ctx, gcAddr)
		return gcCounters{c.runs - before.runs, c.failures - before.failures, c.deleted - before.deleted}, err
	}
	start := time.Now()
	var (
		err  error
		done gcCounters
	)
	reps := 0
	for ; reps < 50*gcWindowCap && err == nil; reps++ {
		el := time.Since(start)
		if reps > 0 && el >= rn.prof.GCWindow && (!gcOn || done.runs >= minGCPasses || el >= gcWindowCap*rn.prof.GCWindow) {
			break
		}
		err = rn.small(ctx, &participant{name: p.name + "/gc", reg: p.reg}, roundBase+reps)
		if err == nil {
			done, err = passes()
		}
	}
	el := time.Since(start)
	return 2 * rn.prof.SmallSize * int64(rn.prof.SmallCount*reps), 2 * rn.prof.SmallCount * reps, el, done, err
}

// The looping GC is a third replica on the same storage and redis that
// serves no traffic and runs background passes every gcInterval. Its
// grace is short so that the benchmark's own unreferenced blobs become
// garbage during the run and passes really delete; it must exceed the
// servers' pin_timeout (30s).
const (
	gcInterval = 100 * time.Millisecond
	gcGrace    = 35 * time.Second
)

type gcCounters struct{ runs, failures, deleted int64 }

func (g *gcCounters) add(o gcCounters) {
	g.runs += o.runs
	g.failures += o.failures
	g.deleted += o.deleted
}

// waitFirstGC waits (at most a minute) until the GC replica has finished
// a pass, and returns its counters then.
func waitFirstGC(ctx context.Context, addr string) (gcCounters, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := readGCCounters(ctx, addr)
		if err == nil && c.runs > 0 {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("GC replica finished no pass within a minute (last error: %v)", err)
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readGCCounters reads the GC counters from a replica's /metrics.
func readGCCounters(ctx context.Context, addr string) (gcCounters, error) {
	c := &client{base: "http://" + addr, hc: newHTTPClient()}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil, 0, nil, http.StatusOK)
	if err != nil {
		return gcCounters{}, fmt.Errorf("GC replica metrics: %w", err)
	}
	defer resp.Body.Close()
	var g gcCounters
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "stratus_gc_runs_total":
			g.runs = int64(v)
		case "stratus_gc_failures_total":
			g.failures = int64(v)
		case "stratus_gc_objects_deleted_total":
			g.deleted = int64(v)
		}
	}
	return g, sc.Err()
}
