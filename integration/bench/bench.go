package main

import (
	"bufio"
	"context"
	"encoding/json"
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

	"golang.org/x/sync/errgroup"

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

	var (
		minio    *minioServer
		s3Args   func(bucket string) []string
		refStore func(name string) referenceStorage
		lim      direct
		stopList []func()
	)
	defer func() {
		for i := len(stopList) - 1; i >= 0; i-- {
			stopList[i]()
		}
	}()
	switch kind {
	case "filesystem":
		s3Args = func(name string) []string { return []string{"--root", filepath.Join(dir, name)} }
		refStore = func(name string) referenceStorage { return referenceStorage{rootDir: filepath.Join(dir, name)} }
		lim = fsDirect{dir: filepath.Join(dir, "direct")}
	case "minio":
		log.Info("starting minio")
		if minio, err = startMinio(ctx, tl.Minio, filepath.Join(dir, "minio")); err != nil {
			return fmt.Errorf("minio: %w", err)
		}
		stopList = append(stopList, func() { minio.Stop() })
		s3c := newS3Client(minio)
		for _, b := range []string{"stratus-1", "stratus-2rr", "reference", "direct"} {
			if err := createBucket(ctx, s3c, b); err != nil {
				return err
			}
		}
		s3Args = func(bucket string) []string {
			return []string{
				"--set", "storage.driver=s3",
				"--set", "storage.s3.bucket=" + bucket,
				"--set", "storage.s3.endpoint=" + minio.endpoint,
				"--set", "storage.s3.force_path_style=true",
				"--set", "storage.s3.access_key=" + minio.accessKey,
				"--set", "storage.s3.secret_key=" + minio.secretKey,
				"--set", "storage.s3.region=us-east-1",
			}
		}
		refStore = func(name string) referenceStorage { return referenceStorage{s3: minio, bucket: name} }
		lim = s3Direct{client: s3c, bucket: "direct"}
	default:
		return fmt.Errorf("unknown backend %q (want filesystem or minio)", kind)
	}

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
	redisProc, redisAddr, err := startRedis(ctx, tl.Redis, dir)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	args2 := append(s3Args("stratus-2rr"), "--set", "redis.addrs="+redisAddr)
	r1, a1, err := start("stratus-2rr-a", args2)
	if err != nil {
		redisProc.Stop()
		return err
	}
	r2, a2, err := start("stratus-2rr-b", args2)
	if err != nil {
		r1.Stop()
		redisProc.Stop()
		return err
	}
	rr, err := startRoundRobin([]string{a1, a2}, log)
	if err != nil {
		r1.Stop()
		r2.Stop()
		redisProc.Stop()
		return err
	}
	ct2 := newContender("stratus-2rr", []*launch.Process{r1, r2, redisProc}, rr.addr)
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
	rn.gcCompare(ctx, tl.Stratus)
	return ctx.Err()
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

// parallel runs fn for 0..n-1 on conc workers and returns each one's
// latency; it stops at the first error.
func parallel(ctx context.Context, n, conc int, timeout time.Duration, fn func(ctx context.Context, i int) error) ([]time.Duration, time.Duration, error) {
	lats := make([]time.Duration, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	start := time.Now()
	for i := 0; i < n; i++ {
		g.Go(func() error {
			octx, cancel := context.WithTimeout(gctx, timeout)
			defer cancel()
			t := time.Now()
			if err := fn(octx, i); err != nil {
				return fmt.Errorf("op %d: %w", i, err)
			}
			lats[i] = time.Since(t)
			return nil
		})
	}
	err := g.Wait()
	return lats, time.Since(start), err
}

func (rn *runner) blobName(kind, part string, round, i int) string {
	return fmt.Sprintf("%s/%s/%s/r%d/%d", rn.backend, part, kind, round, i)
}

// small pushes SmallCount blobs at the given concurrency (POST, one PATCH,
// PUT ?digest=: what docker and crane send), then pulls them back.
func (rn *runner) small(ctx context.Context, p *participant, round int) error {
	pr := rn.prof
	blobs := make([]*blob, pr.SmallCount)
	for i := range blobs {
		b, err := rn.gen.newBlob(pr.SmallSize, rn.blobName("small", p.name, round, i))
		if err != nil {
			return err
		}
		blobs[i] = b
	}
	repo := fmt.Sprintf("bench/small-r%d", round)
	key := func(i int) string { return fmt.Sprintf("small/r%d/%d", round, i) }
	lats, el, err := parallel(ctx, len(blobs), pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		if p.dir != nil {
			return p.dir.put(ctx, key(i), blobs[i])
		}
		_, err := p.reg.c.pushChunked(ctx, repo, blobs[i], pr.SmallSize)
		return err
	})
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	total := pr.SmallSize * int64(len(blobs))
	rn.res.throughput(rn.backend, rn.mSmallPush(), p.name, total, len(blobs), el, lats)
	lats, el, err = parallel(ctx, len(blobs), pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		if p.dir != nil {
			return p.dir.get(ctx, key(i), pr.SmallSize)
		}
		return p.reg.c.pullBlob(ctx, repo, blobs[i].Digest, pr.SmallSize, true)
	})
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	rn.res.throughput(rn.backend, rn.mSmallPull(), p.name, total, len(blobs), el, lats)
	return nil
}

// large streams one blob of size from the generator, in ChunkSize PATCHes
// or as one monolithic PUT, watching the servers' RSS meanwhile; after a
// chunked push it pulls the blob back.
func (rn *runner) large(ctx context.Context, p *participant, round int, size int64, mode string) error {
	pr := rn.prof
	b, err := rn.gen.newBlob(size, rn.blobName("large-"+mode, p.name, round, 0))
	if err != nil {
		return err
	}
	repo := "bench/large"
	key := fmt.Sprintf("large/%s/r%d", mode, round)
	octx, cancel := context.WithTimeout(ctx, pr.OpTimeout)
	defer cancel()

	var watcher *rssWatcher
	var names map[int]string
	if p.reg != nil {
		pids := p.reg.pids()
		names = make(map[int]string)
		var list []int
		for n, pid := range pids {
			names[pid] = n
			list = append(list, pid)
		}
		watcher = watchRSS(list, 10*time.Millisecond)
	}
	start := time.Now()
	var commit time.Duration
	switch {
	case p.dir != nil:
		err = p.dir.put(octx, key, b)
	case mode == "chunked":
		commit, err = p.reg.c.pushChunked(octx, repo, b, pr.ChunkSize)
	default:
		err = p.reg.c.pushMonolithic(octx, repo, b)
	}
	el := time.Since(start)
	if watcher != nil {
		peaks := watcher.stop()
		if err == nil {
			byName := make(map[string]int64)
			for pid, v := range peaks {
				byName[names[pid]] = v
			}
			rn.res.peak(rn.backend, mRSS(size), p.name, byName)
		}
	}
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	rn.res.throughput(rn.backend, mLargePush(size, mode, pr.ChunkSize), p.name, size, 1, el, []time.Duration{el})
	if mode == "chunked" && p.reg != nil {
		rn.res.latency(rn.backend, mCommit(size), p.name, commit)
	}
	if mode != "chunked" {
		return nil
	}
	start = time.Now()
	if p.dir != nil {
		err = p.dir.get(octx, key, size)
	} else {
		err = p.reg.c.pullBlob(octx, repo, b.Digest, size, false)
	}
	el = time.Since(start)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	rn.res.throughput(rn.backend, mLargePull(size), p.name, size, 1, el, []time.Duration{el})
	return nil
}

// commitSmall measures PUT ?digest= after one PATCH of SmallSize, one
// upload at a time, to compare with the large blobs' commit.
func (rn *runner) commitSmall(ctx context.Context, p *participant, round int) error {
	pr := rn.prof
	for i := 0; i < pr.CommitSamples; i++ {
		b, err := rn.gen.newBlob(pr.SmallSize, rn.blobName("commit", p.name, round, i))
		if err != nil {
			return err
		}
		octx, cancel := context.WithTimeout(ctx, pr.OpTimeout)
		d, err := p.reg.c.pushChunked(octx, "bench/commit", b, pr.SmallSize)
		cancel()
		if err != nil {
			return err
		}
		rn.res.latency(rn.backend, mCommit(pr.SmallSize), p.name, d)
	}
	return nil
}

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar"
)

type descriptor struct {
	MediaType    string `json:"mediaType"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
	ArtifactType string `json:"artifactType,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// base blobs every manifest of the benchmark references.
var (
	configJSON = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layerBytes = []byte("stratus benchmark layer\n")
)

func sha(b []byte) string {
	d, _ := descriptorOf("", b)
	return d.Digest
}

func descriptorOf(mt string, b []byte) (descriptor, error) {
	h := newSHA()
	h.Write(b)
	return descriptor{MediaType: mt, Digest: h.digest(), Size: int64(len(b))}, nil
}

// imageManifest returns a manifest over the base blobs; note makes it unique.
func imageManifest(note string, subject *descriptor) []byte {
	cfg, _ := descriptorOf(mtConfig, configJSON)
	layer, _ := descriptorOf(mtLayer, layerBytes)
	m := manifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: []descriptor{layer},
		Annotations: map[string]string{"org.stratus.bench": note}}
	if subject != nil {
		m.ArtifactType = "application/vnd.stratus.bench.signature"
		m.Subject = subject
	}
	b, _ := json.Marshal(m)
	return b
}

// setup creates, untimed, what the listing workloads list: a repository
// with Tags tags, Repos repositories for the catalog and a subject with
// Referrers referrers.
func (rn *runner) setup(ctx context.Context, ct *contender) error {
	pr := rn.prof
	c := ct.c
	octx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, b := range [][]byte{configJSON, layerBytes} {
		if _, err := c.pushBytes(octx, "bench/base", b); err != nil {
			return fmt.Errorf("base blobs: %w", err)
		}
	}
	mount := func(ctx context.Context, repo string) error {
		for _, b := range [][]byte{configJSON, layerBytes} {
			if err := c.mount(ctx, repo, "bench/base", sha(b)); err != nil {
				return fmt.Errorf("mount into %s: %w", repo, err)
			}
		}
		return nil
	}
	for _, repo := range []string{"bench/manifests", "bench/tags", "bench/referrers"} {
		if err := mount(octx, repo); err != nil {
			return err
		}
	}
	tagged := imageManifest("tags", nil)
	if _, _, err := parallel(octx, pr.Tags, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		return c.putManifest(ctx, "bench/tags", fmt.Sprintf("t%05d", i), mtManifest, tagged)
	}); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	if _, _, err := parallel(octx, pr.Repos, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		repo := fmt.Sprintf("bench/catalog/r%05d", i)
		if err := mount(ctx, repo); err != nil {
			return err
		}
		return c.putManifest(ctx, repo, "latest", mtManifest, imageManifest(repo, nil))
	}); err != nil {
		return fmt.Errorf("catalog repositories: %w", err)
	}
	subject := imageManifest("subject", nil)
	if err := c.putManifest(octx, "bench/referrers", "subject", mtManifest, subject); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	sd, _ := descriptorOf(mtManifest, subject)
	if _, _, err := parallel(octx, pr.Referrers, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		m := imageManifest("referrer "+strconv.Itoa(i), &sd)
		d, _ := descriptorOf(mtManifest, m)
		return c.putManifest(ctx, "bench/referrers", d.Digest, mtManifest, m)
	}); err != nil {
		return fmt.Errorf("referrers: %w", err)
	}
	return nil
}

// manifests PUTs Manifests distinct manifests by tag, then GETs them by tag.
func (rn *runner) manifests(ctx context.Context, p *participant, round int) error {
	pr := rn.prof
	c := p.reg.c
	tag := func(i int) string { return fmt.Sprintf("r%d-%05d", round, i) }
	lats, el, err := parallel(ctx, pr.Manifests, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		return c.putManifest(ctx, "bench/manifests", tag(i), mtManifest, imageManifest(tag(i), nil))
	})
	if err != nil {
		return fmt.Errorf("PUT: %w", err)
	}
	rn.res.throughput(rn.backend, metricDef{fmt.Sprintf("manifest PUT, c=%d", pr.Concurrency), unitOps, ""}, p.name, 0, pr.Manifests, el, lats)
	lats, el, err = parallel(ctx, pr.Manifests, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		return c.getManifest(ctx, "bench/manifests", tag(i), mtManifest)
	})
	if err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	rn.res.throughput(rn.backend, metricDef{fmt.Sprintf("manifest GET, c=%d", pr.Concurrency), unitOps, ""}, p.name, 0, pr.Manifests, el, lats)
	return nil
}

// listing times ListIters sequential complete listings (all pages).
func (rn *runner) listing(ctx context.Context, p *participant, m metricDef, want int, exact bool, fn func(ctx context.Context) (int, error)) error {
	pr := rn.prof
	lats, el, err := parallel(ctx, pr.ListIters, 1, pr.OpTimeout, func(ctx context.Context, i int) error {
		n, err := fn(ctx)
		if err != nil {
			return err
		}
		if n < want || (exact && n != want) {
			return fmt.Errorf("listed %d entries, want %d", n, want)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rn.res.throughput(rn.backend, m, p.name, 0, pr.ListIters, el, lats)
	return nil
}

func (rn *runner) tagsList(ctx context.Context, p *participant, round int) error {
	m := metricDef{fmt.Sprintf("tags list, %d tags", rn.prof.Tags), unitOps, ""}
	return rn.listing(ctx, p, m, rn.prof.Tags, true, func(ctx context.Context) (int, error) {
		return p.reg.c.list(ctx, "/v2/bench/tags/tags/list", "tags")
	})
}

func (rn *runner) catalog(ctx context.Context, p *participant, round int) error {
	m := metricDef{fmt.Sprintf("_catalog, %d+ repos", rn.prof.Repos), unitOps, ""}
	return rn.listing(ctx, p, m, rn.prof.Repos, false, func(ctx context.Context) (int, error) {
		return p.reg.c.list(ctx, "/v2/_catalog", "repositories")
	})
}

func (rn *runner) referrers(ctx context.Context, p *participant, round int) error {
	m := metricDef{fmt.Sprintf("referrers, %d", rn.prof.Referrers), unitOps, ""}
	sd, _ := descriptorOf(mtManifest, imageManifest("subject", nil))
	err := rn.listing(ctx, p, m, rn.prof.Referrers, true, func(ctx context.Context) (int, error) {
		return p.reg.c.referrers(ctx, "bench/referrers", sd.Digest)
	})
	// A registry without the referrers API (the reference registry has
	// none) answers 404 on the route itself: a result, not a failure.
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		rn.res.setNote(rn.backend, m, p.name, "not supported (404 on GET /v2/<name>/referrers/<digest>)")
		return nil
	}
	return err
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
