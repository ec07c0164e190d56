package main

// Memory workloads on a fresh `stratus serve` (so that its peak RSS is
// this workload's, not the history of the rounds before): one large
// chunked push, and many concurrent pushes against the default process
// memory budget (limits.memory).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
)

// Buckets (MinIO) of the processes the memory workloads start.
var freshBuckets = []string{"stratus-fresh", "stratus-mem"}

// k8sLimit is the container memory limit the deployment docs give a pod.
const k8sLimit = 512 << 20

func (rn *runner) mFreshRSS() metricDef {
	return metricDef{"peak RSS, one " + mib(rn.prof.FreshPushSize) + " push, fresh process", unitMiB, ""}
}

func (rn *runner) mMemRSS() metricDef {
	return metricDef{fmt.Sprintf("peak RSS, %d concurrent %s pushes", rn.prof.MemPushes, mib(rn.prof.MemSize)), unitMiB, ""}
}

func (rn *runner) mMemPush() metricDef {
	return metricDef{fmt.Sprintf("push %d x %s, all concurrent", rn.prof.MemPushes, mib(rn.prof.MemSize)), unitMBps, ""}
}

// freshProcessRounds runs the memory workloads once per round; the
// concurrent one only on MinIO, where every upload holds a part buffer.
func (rn *runner) freshProcessRounds(ctx context.Context) {
	for round := 0; round < rn.prof.Rounds && ctx.Err() == nil; round++ {
		rn.res.setRound(round)
		rn.logged(round, "fresh-process push", func() error { return rn.freshPush(ctx, round) })
		if rn.backend == "minio" {
			rn.logged(round, "concurrent pushes", func() error { return rn.memoryPressure(ctx, round) })
		}
	}
}

// logged runs one Stratus-only workload, logs it and files its error.
func (rn *runner) logged(round int, name string, fn func() error) {
	if !rn.want(name) {
		return
	}
	start := time.Now()
	err := fn()
	rn.log.Info("task", "round", round, "task", name, "contender", "stratus-1", "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		rn.res.fail(rn.backend, name, "stratus-1", round, err)
	}
}

// startFresh starts one stratus process with the default limits on its
// own storage (bucket or directory) name.
func (rn *runner) startFresh(ctx context.Context, name string) (*contender, error) {
	p, addr, err := startStratus(ctx, rn.tl, name, rn.store.args(name))
	var nr *notReadyError
	if err != nil && !errors.As(err, &nr) {
		return nil, err
	}
	return &contender{name: name, procs: []*launch.Process{p}, c: &client{base: "http://" + addr, hc: newHTTPClient()}}, nil
}

// freshPush is one chunked push of FreshPushSize into a fresh process,
// reporting the process's VmHWM (its peak since start, so nothing between
// samples is missed).
func (rn *runner) freshPush(ctx context.Context, round int) error {
	ct, err := rn.startFresh(ctx, "stratus-fresh")
	if err != nil {
		return err
	}
	defer ct.close()
	pid := ct.procs[0].Pid()
	b, err := rn.gen.newBlob(rn.prof.FreshPushSize, rn.blobName("fresh", "stratus-fresh", round, 0))
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, rn.prof.OpTimeout)
	defer cancel()
	idle, _ := readStatusBytes(pid, "VmRSS")
	start := time.Now()
	if _, err := ct.c.pushChunked(octx, "bench/fresh", b, rn.prof.ChunkSize); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	el := time.Since(start)
	hwm, err := readStatusBytes(pid, "VmHWM")
	if err != nil {
		return err
	}
	m := rn.mFreshRSS()
	rn.res.peak(rn.backend, m, "stratus-1", map[string]int64{"stratus-fresh": hwm})
	rn.res.addRemark(rn.backend, m, "stratus-1", fmt.Sprintf("R%d: VmHWM %s (idle RSS before %s), %s chunked %s in %s",
		round+1, mibf(hwm), mibf(idle), mib(b.Size), mib(rn.prof.ChunkSize), el.Round(time.Millisecond)))
	return nil
}

// memoryPressure pushes MemPushes blobs of MemSize at once through one
// fresh process with the default limits.memory, sampling its RSS, and
// reports the peak against the container limit and how often the budget
// answered 503 (the client waits Retry-After and resumes, as real clients
// do).
func (rn *runner) memoryPressure(ctx context.Context, round int) error {
	ct, err := rn.startFresh(ctx, "stratus-mem")
	if err != nil {
		return err
	}
	defer ct.close()
	defer rn.store.counter.empty(context.WithoutCancel(ctx), "stratus-mem")
	pr := rn.prof
	pid := ct.procs[0].Pid()
	watcher := watchRSS([]int{pid}, 10*time.Millisecond)
	var st retryStats
	lats, el, err := parallel(ctx, pr.MemPushes, pr.MemPushes, pr.OpTimeout, func(ctx context.Context, i int) error {
		b, err := rn.gen.newBlob(pr.MemSize, rn.blobName("mem", "stratus-mem", round, i))
		if err != nil {
			return err
		}
		return ct.c.pushResumable(ctx, "bench/mem", b, &st)
	})
	peaks := watcher.stop()
	hwm, herr := readStatusBytes(pid, "VmHWM")
	if err != nil {
		return fmt.Errorf("%w (%s)", err, st.String())
	}
	if herr != nil {
		return herr
	}
	rn.res.throughput(rn.backend, rn.mMemPush(), "stratus-1", pr.MemSize*int64(pr.MemPushes), pr.MemPushes, el, lats)
	m := rn.mMemRSS()
	rn.res.peak(rn.backend, m, "stratus-1", map[string]int64{"stratus-mem": hwm})
	verdict := "under"
	if hwm >= k8sLimit {
		verdict = "OVER"
	}
	rn.res.addRemark(rn.backend, m, "stratus-1", fmt.Sprintf("R%d: VmHWM %s (sampled VmRSS max %s), %s the %s limit; %s; took %s",
		round+1, mibf(hwm), mibf(peaks[pid]), verdict, mib(k8sLimit), st.String(), el.Round(time.Second)))
	return nil
}

// readStatusBytes reads a "kB" field (VmRSS, VmHWM) of /proc/pid/status.
func readStatusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func mibf(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
