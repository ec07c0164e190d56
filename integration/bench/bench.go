package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// FineChunkedSize is the blob sent in FineChunk PATCHes (regctl's
	// default chunk) by the fine-chunked workload.
	FineChunkedSize int64 `json:"fine_chunked_size"`
	FineChunk       int64 `json:"fine_chunk"`
	// FineTimeout bounds one fine-chunked upload; a contender that hits it
	// is reported as slower than that and not run again.
	FineTimeout time.Duration `json:"fine_timeout"`
	// MemPushes blobs of MemSize are pushed all at once through one fresh
	// process on MinIO by the memory workload.
	MemPushes int   `json:"mem_pushes"`
	MemSize   int64 `json:"mem_size"`
	// FreshPushSize is the single chunked push into a fresh process whose
	// peak RSS the fresh-process workload reports.
	FreshPushSize int64 `json:"fresh_push_size"`
	// OpTimeout bounds one request sequence (one blob push, one listing).
	OpTimeout time.Duration `json:"op_timeout"`
}

func shortProfile() profile {
	return profile{
		Rounds: 2, SmallSize: 1 << 20, SmallCount: 32, Concurrency: 8,
		LargeSizes: []int64{16 << 20}, ChunkSize: 8 << 20,
		Manifests: 64, Repos: 100, Tags: 100, Referrers: 20, ListIters: 8, CommitSamples: 8,
		GCWindow: 3 * time.Second, OpTimeout: time.Minute,
		FineChunkedSize: 16 << 20, FineChunk: 1 << 20, FineTimeout: time.Minute, MemPushes: 24, MemSize: 16 << 20, FreshPushSize: 64 << 20,
	}
}

func fullProfile() profile {
	return profile{
		Rounds: 2, SmallSize: 1 << 20, SmallCount: 128, Concurrency: 8,
		LargeSizes: []int64{256 << 20, 1 << 30}, ChunkSize: 8 << 20,
		Manifests: 400, Repos: 1000, Tags: 1000, Referrers: 100, ListIters: 20, CommitSamples: 16,
		GCWindow: 20 * time.Second, OpTimeout: 15 * time.Minute,
		FineChunkedSize: 256 << 20, FineChunk: 1 << 20, FineTimeout: 4 * time.Minute, MemPushes: 200, MemSize: 64 << 20, FreshPushSize: 1 << 30,
	}
}

// tools are the programs a run starts.
type tools struct {
	Stratus, Reference, Minio, Redis string
	// StratusEnv is added to every stratus process's environment (for
	// experiments such as GOMEMLIMIT).
	StratusEnv []string
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

// cpuPids are all the contender's processes, Redis included: CPU time
// per operation counts what the contender runs.
func (ct *contender) cpuPids() []int {
	var out []int
	for _, p := range ct.procs {
		out = append(out, p.Pid())
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
	tl      tools
	store   backendStore // for processes a workload starts itself
	// fineGaveUp: contenders whose fine-chunked upload timed out.
	fineGaveUp map[string]bool
	only       string // run only workloads whose name contains it ("": all)
}

// want says whether the workload of that name runs (-only).
func (rn *runner) want(name string) bool { return rn.only == "" || strings.Contains(name, rn.only) }

// runBackend starts the backend and every contender on it, runs all rounds
// and stops everything.
func runBackend(ctx context.Context, kind string, prof profile, tl tools, work string, gen *generator, res *results, only string, log *slog.Logger) error {
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
		p, addr, err := startStratus(ctx, tl, name, args)
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

	rn := &runner{backend: kind, prof: prof, gen: gen, res: res, log: log, tl: tl, store: store, fineGaveUp: make(map[string]bool), only: only}
	for _, ct := range cts {
		rn.parts = append(rn.parts, &participant{name: ct.name, reg: ct})
	}
	rn.parts = append(rn.parts, &participant{name: "direct", dir: lim})

	for _, ct := range cts {
		if !rn.want("manifests") && !rn.want("tags list") && !rn.want("catalog") && !rn.want("referrers") {
			break // nothing reads what setup writes
		}
		log.Info("setup (untimed)", "contender", ct.name)
		if err := rn.setup(ctx, ct); err != nil {
			res.fail(kind, "setup", ct.name, -1, err)
			log.Error("setup failed", "contender", ct.name, "err", err)
		}
	}
	if err := rn.runRounds(ctx); err != nil {
		return err
	}
	rn.freshProcessRounds(ctx)
	rn.gcCompare(ctx)
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
	counter   *s3Counter // MinIO only
	// pids are the backend's server processes (MinIO), whose CPU time a
	// workload counts with the contender's.
	pids []int
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
		counter, err := startS3Counter(minio, log)
		if err != nil {
			minio.Stop()
			return backendStore{}, nil, err
		}
		stop := func() { counter.close(); minio.Stop() }
		// Everyone reaches MinIO through the counter.
		proxied := *minio
		proxied.endpoint = counter.endpoint
		minio = &proxied
		s3c := newS3Client(minio)
		for _, b := range append([]string{"stratus-1", "stratus-2rr", "reference", "direct"}, freshBuckets...) {
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
			counter:   counter,
			pids:      []int{minio.Pid()},
		}, stop, nil
	}
	return backendStore{}, nil, fmt.Errorf("unknown backend %q (want filesystem or minio)", kind)
}

// runRounds runs every task in every round on every participant that
// takes it.
func (rn *runner) runRounds(ctx context.Context) error {
	kind, prof, res, log := rn.backend, rn.prof, rn.res, rn.log
	var tasks []task
	for _, t := range rn.tasks() {
		if rn.want(t.name) {
			tasks = append(tasks, t)
		}
	}
	for round := 0; round < prof.Rounds; round++ {
		res.setRound(round)
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

// mSmallPullCPU is the CPU time per small pull of the contender's
// processes and the backend's (MinIO); for direct, MinIO's alone. At 8
// clients on 2 cores the pulls are CPU-bound, so this is what decides
// their throughput, and it is steadier than throughput on a shared
// machine.
func (rn *runner) mSmallPullCPU() metricDef {
	name := fmt.Sprintf("CPU ms per %s pull (server + store), c=%d", mib(rn.prof.SmallSize), rn.prof.Concurrency)
	return metricDef{name, unitCPU, name}
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
		task{name: "fine chunked " + mib(p.FineChunkedSize), run: rn.fineChunked},
	)
	return ts
}
