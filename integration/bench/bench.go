package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
)

// profile is the size of every workload; short and full differ only here.
type profile struct {
	Rounds        int     `json:"rounds"`
	SmallSize     int64   `json:"small_size"`
	SmallCount    int     `json:"small_count"`
	Concurrency   int     `json:"concurrency"`
	LargeSizes    []int64 `json:"large_sizes"`
	ChunkSize     int64   `json:"chunk_size"`
	Manifests     int     `json:"manifests"`
	Repos         int     `json:"repos"`
	Tags          int     `json:"tags"`
	Referrers     int     `json:"referrers"`
	ListIters     int     `json:"list_iters"`
	CommitSamples int     `json:"commit_samples"`
	// GCWindow is the least time each half of the GC comparison runs.
	GCWindow time.Duration `json:"gc_window"`
	// OpTimeout bounds one request sequence (one blob push, one listing).
	OpTimeout time.Duration `json:"op_timeout"`
}

func shortProfile() profile {
	return profile{
		Rounds: 2, SmallSize: 1 << 20, SmallCount: 32, Concurrency: 8,
		LargeSizes: []int64{16 << 20}, ChunkSize: 8 << 20,
		Manifests: 64, Repos: 100, Tags: 100, Referrers: 20, ListIters: 8, CommitSamples: 8,
		GCWindow: 3 * time.Second, OpTimeout: time.Minute,
	}
}

func fullProfile() profile {
	return profile{
		Rounds: 2, SmallSize: 1 << 20, SmallCount: 128, Concurrency: 8,
		LargeSizes: []int64{256 << 20, 1 << 30}, ChunkSize: 8 << 20,
		Manifests: 400, Repos: 1000, Tags: 1000, Referrers: 100, ListIters: 20, CommitSamples: 16,
		GCWindow: 20 * time.Second, OpTimeout: 15 * time.Minute,
	}
}

// tools are the programs a run starts.
type tools struct {
	Stratus, Reference, Minio, Redis string
}

// contender is one registry deployment under test.
type contender struct {
	name   string
	c      *client
	procs  []*launch.Process
	rr     *roundRobin
	gcArgs []string // serve flags that reach its storage and redis, for `stratus gc run`
	pulls  map[int64]*blob
}

func (ct *contender) pids() map[string]int {
	out := make(map[string]int)
	for _, p := range ct.procs {
		if p.Name() == "redis" {
			continue
		}
		out[p.Name()] = p.Pid()
	}
	return out
}

func (ct *contender) close() {
	if ct.rr != nil {
		ct.rr.close()
	}
	for _, p := range ct.procs {
		p.Stop()
	}
}

// participant is a contender or the direct-to-backend ceiling.
type participant struct {
	name string
	reg  *contender
	dir  direct
}

// runner runs the workloads on one backend.
type runner struct {
	backend string
	prof    profile
	gen     *generator
	res     *results
	log     *slog.Logger
	parts   []*participant // contenders, then direct
}

// runBackend starts the backend and every contender on it, runs all rounds
// and stops everything.
func runBackend(ctx context.Context, kind string, prof profile, tl tools, work string, gen *generator, res *results, log *slog.Logger) error {
	dir, err := os.MkdirTemp(work, kind+"-")
	if err != nil {
		return err
	}
	// Blobs of a full run take gigabytes; nothing of a backend outlives it.
	defer os.RemoveAll(dir)
	log = log.With("backend", kind)

	store, stop, err := openBackend(ctx, kind, dir, tl, log)
	if err != nil {
		return err
	}
	defer stop()
	s3Args, refStore, lim := store.args, store.reference, store.direct

	var cts []*contender
	defer func() {
		for _, ct := range cts {
			ct.close()
		}
	}()
	newContender := func(name string, procs []*launch.Process, addr string) *contender {
		ct := &contender{name: name, procs: procs, c: &client{base: "http://" + addr, hc: newHTTPClient()}, pulls: make(map[int64]*blob)}
		cts = append(cts, ct)
		return ct
	}

	log.Info("starting stratus-1")
	args1 := s3Args("stratus-1")
	start := func(name string, args []string) (*launch.Process, string, error) {
		p, addr, err := startStratus(ctx, tl.Stratus, name, args)
		var nr *notReadyError
		if errors.As(err, &nr) {
			log.Warn("readiness", "err", err)
			res.fail(kind, "readiness", name, -1, err)
			err = nil
		}
		return p, addr, err
	}
	p, addr, err := start("stratus-1", args1)
	if err != nil {
		return err
	}
	newContender("stratus-1", []*launch.Process{p}, addr).gcArgs = args1

	log.Info("starting stratus-2rr (redis + 2 replicas + round-robin proxy)")
	procs, rr, args2, err := startReplicaPair(ctx, tl, dir, s3Args("stratus-2rr"), start, log)
	if err != nil {
		return err
	}
	ct2 := newContender("stratus-2rr", procs, rr.addr)
	ct2.rr, ct2.gcArgs = rr, args2

	log.Info("starting reference registry")
	rp, raddr, err := startReference(ctx, tl.Reference, dir, refStore("reference"))
	if err != nil {
		return err
	}
	newContender("reference", []*launch.Process{rp}, raddr)

	rn := &runner{backend: kind, prof: prof, gen: gen, res: res, log: log}
	for _, ct := range cts {
		rn.parts = append(rn.parts, &participant{name: ct.name, reg: ct})
	}
	rn.parts = append(rn.parts, &participant{name: "direct", dir: lim})

	for _, ct := range cts {
		log.Info("setup (untimed)", "contender", ct.name)
		if err := rn.setup(ctx, ct); err != nil {
			res.fail(kind, "setup", ct.name, -1, err)
			log.Error("setup failed", "contender", ct.name, "err", err)
		}
	}
	if err := rn.runRounds(ctx); err != nil {
		return err
	}
	rn.gcCompare(ctx, tl.Stratus)
	return ctx.Err()
}

// startReplicaPair starts redis, two stratus replicas on it with args and
// a round-robin proxy in front of them; on failure it stops what it
// started. It returns the processes, the proxy and the replicas' flags.
func startReplicaPair(ctx context.Context, tl tools, dir string, args []string,
	start func(name string, args []string) (*launch.Process, string, error), log *slog.Logger,
) ([]*launch.Process, *roundRobin, []string, error) {
	redisProc, redisAddr, err := startRedis(ctx, tl.Redis, dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("redis: %w", err)
	}
	args = append(args, "--set", "redis.addrs="+redisAddr)
	started := []*launch.Process{redisProc}
	fail := func(err error) ([]*launch.Process, *roundRobin, []string, error) {
		for _, p := range started {
			p.Stop()
		}
		return nil, nil, nil, err
	}
	var addrs []string
	for _, name := range []string{"stratus-2rr-a", "stratus-2rr-b"} {
		p, addr, err := start(name, args)
		if err != nil {
			return fail(err)
		}
		started = append([]*launch.Process{p}, started...)
		addrs = append(addrs, addr)
	}
	rr, err := startRoundRobin(addrs, log)
	if err != nil {
		return fail(err)
	}
	return started, rr, args, nil
}

// backendStore is how the contenders and the direct ceiling reach one
// backend: stratus flags, the reference registry's storage, and the direct
// client.
type backendStore struct {
	args      func(name string) []string
	reference func(name string) referenceStorage
	direct    direct
}

// openBackend prepares the backend kind under dir (for MinIO: starts it and
// creates one bucket per contender); stop releases it.
func openBackend(ctx context.Context, kind, dir string, tl tools, log *slog.Logger) (backendStore, func(), error) {
	switch kind {
	case "filesystem":
		return backendStore{
			args:      func(name string) []string { return []string{"--root", filepath.Join(dir, name)} },
			reference: func(name string) referenceStorage { return referenceStorage{rootDir: filepath.Join(dir, name)} },
			direct:    fsDirect{dir: filepath.Join(dir, "direct")},
		}, func() {}, nil
	case "minio":
		log.Info("starting minio")
		minio, err := startMinio(ctx, tl.Minio, filepath.Join(dir, "minio"))
		if err != nil {
			return backendStore{}, nil, fmt.Errorf("minio: %w", err)
		}
		stop := func() { minio.Stop() }
		s3c := newS3Client(minio)
		for _, b := range []string{"stratus-1", "stratus-2rr", "reference", "direct"} {
			if err := createBucket(ctx, s3c, b); err != nil {
				stop()
				return backendStore{}, nil, err
			}
		}
		return backendStore{
			args: func(bucket string) []string {
				return []string{
					"--set", "storage.driver=s3",
					"--set", "storage.s3.bucket=" + bucket,
					"--set", "storage.s3.endpoint=" + minio.endpoint,
					"--set", "storage.s3.force_path_style=true",
					"--set", "storage.s3.access_key=" + minio.accessKey,
					"--set", "storage.s3.secret_key=" + minio.secretKey,
					"--set", "storage.s3.region=us-east-1",
				}
			},
			reference: func(name string) referenceStorage { return referenceStorage{s3: minio, bucket: name} },
			direct:    s3Direct{client: s3c, bucket: "direct"},
		}, stop, nil
	}
	return backendStore{}, nil, fmt.Errorf("unknown backend %q (want filesystem or minio)", kind)
}

// runRounds runs every task in every round on every participant that
// takes it.
func (rn *runner) runRounds(ctx context.Context) error {
	kind, prof, res, log := rn.backend, rn.prof, rn.res, rn.log
	tasks := rn.tasks()
	for round := 0; round < prof.Rounds; round++ {
		for ti, t := range tasks {
			var ps []*participant
			for _, p := range rn.parts {
				if p.reg != nil || t.direct {
					ps = append(ps, p)
				}
			}
			// Rotate the order every round and task, so that no contender
			// always runs first (cold) or last (after the others warmed the
			// page cache or MinIO).
			off := (round + ti) % len(ps)
			for k := range ps {
				p := ps[(off+k)%len(ps)]
				if err := ctx.Err(); err != nil {
					return err
				}
				start := time.Now()
				err := t.run(ctx, p, round)
				log.Info("task", "round", round, "task", t.name, "contender", p.name, "took", time.Since(start).Round(time.Millisecond), "err", err)
				if err != nil {
					res.fail(kind, t.name, p.name, round, err)
				}
			}
		}
	}
	return nil
}

type task struct {
	name   string
	direct bool // the direct-to-backend participant runs it too
	run    func(ctx context.Context, p *participant, round int) error
}

// Metric names. Sizes appear in the names so the table reads on its own.
func (rn *runner) mSmallPush() metricDef {
	return metricDef{fmt.Sprintf("push %s blobs, c=%d", mib(rn.prof.SmallSize), rn.prof.Concurrency), unitMBps, fmt.Sprintf("push %s blobs, c=%d", mib(rn.prof.SmallSize), rn.prof.Concurrency)}
}
func (rn *runner) mSmallPull() metricDef {
	return metricDef{fmt.Sprintf("pull %s blobs, c=%d", mib(rn.prof.SmallSize), rn.prof.Concurrency), unitMBps, fmt.Sprintf("pull %s blobs, c=%d", mib(rn.prof.SmallSize), rn.prof.Concurrency)}
}

// mLargePush: the direct participant records its write of the same size
// under the same name, so it is the row's limit.
func mLargePush(size int64, mode string, chunk int64) metricDef {
	name := "push " + mib(size) + " monolithic"
	if mode == "chunked" {
		name = "push " + mib(size) + " chunked " + mib(chunk)
	}
	return metricDef{name, unitMBps, name}
}
func mLargePull(size int64) metricDef {
	return metricDef{"pull " + mib(size), unitMBps, "pull " + mib(size)}
}
func mCommit(size int64) metricDef {
	return metricDef{"commit latency " + mib(size), unitMs, ""}
}
func mRSS(size int64) metricDef {
	return metricDef{"peak RSS during " + mib(size) + " push", unitMiB, ""}
}

func (rn *runner) tasks() []task {
	p := rn.prof
	ts := []task{{name: "small blobs", direct: true, run: rn.small}}
	for _, size := range p.LargeSizes {
		ts = append(ts,
			task{name: "large chunked " + mib(size), direct: true, run: func(ctx context.Context, pt *participant, round int) error {
				return rn.large(ctx, pt, round, size, "chunked")
			}},
			task{name: "large monolithic " + mib(size), direct: true, run: func(ctx context.Context, pt *participant, round int) error {
				return rn.large(ctx, pt, round, size, "monolithic")
			}},
		)
	}
	ts = append(ts,
		task{name: "commit " + mib(p.SmallSize), run: rn.commitSmall},
		task{name: "manifests", run: rn.manifests},
		task{name: "tags list", run: rn.tagsList},
		task{name: "catalog", run: rn.catalog},
		task{name: "referrers", run: rn.referrers},
	)
	return ts
}

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
func (rn *runner) gcCompare(ctx context.Context, bin string) {
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
		rn.gcRounds(ctx, bin, p)
	}
}

func (rn *runner) gcRounds(ctx context.Context, bin string, p *participant) {
	with := metricDef{"push+pull 1 MiB, GC looping", unitMBps, ""}
	without := metricDef{"push+pull 1 MiB, no GC", unitMBps, ""}
	var gcStats gcCounters
	for round := 0; round < rn.prof.Rounds; round++ {
		for k := 0; k < 2; k++ {
			// Alternate which half goes first, as for the contenders.
			gcOn := (round+k)%2 == 0
			m := without
			var (
				gcProc *launch.Process
				gcAddr string
				before gcCounters
			)
			if gcOn {
				m = with
				var err error
				gcProc, gcAddr, err = startStratus(ctx, bin, "stratus-2rr-gc", append(slices.Clone(p.reg.gcArgs),
					"--set", "registry.gc.interval="+gcInterval.String(),
					"--set", "registry.gc.grace="+gcGrace.String()))
				var nr *notReadyError
				if err != nil && !errors.As(err, &nr) {
					rn.res.fail(rn.backend, "gc compare", p.name, round, err)
					continue
				}
				// Time the steady state: the loop sleeps one interval
				// before its first pass.
				if before, err = waitFirstGC(ctx, gcAddr); err != nil {
					gcProc.Stop()
					rn.res.fail(rn.backend, "gc compare", p.name, round, err)
					continue
				}
			}
			// Repeat the small workload for at least GCWindow, so that the
			// window spans several passes (bounded by count too).
			start := time.Now()
			var err error
			reps := 0
			for ; reps < 50 && err == nil && (reps == 0 || time.Since(start) < rn.prof.GCWindow); reps++ {
				err = rn.small(ctx, &participant{name: p.name + "/gc", reg: p.reg}, 1000+100*(round*2+k)+reps)
			}
			el := time.Since(start)
			if gcProc != nil {
				c, cerr := readGCCounters(ctx, gcAddr)
				gcProc.Stop()
				gcStats.add(gcCounters{c.runs - before.runs, c.failures - before.failures, c.deleted - before.deleted})
				if err == nil && cerr != nil {
					err = cerr
				}
			}
			if err != nil {
				rn.res.fail(rn.backend, "gc compare", p.name, round, err)
				continue
			}
			total := 2 * rn.prof.SmallSize * int64(rn.prof.SmallCount*reps)
			rn.res.throughput(rn.backend, m, p.name, total, 2*rn.prof.SmallCount*reps, el, nil)
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
