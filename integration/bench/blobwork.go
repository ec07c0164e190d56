package main

// The blob workloads: small pushes and pulls, large chunked and monolithic
// pushes, commit latency.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

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
	pids := slices.Clone(rn.store.pids)
	if p.reg != nil {
		pids = append(pids, p.reg.cpuPids()...)
	}
	cpu := startCPU(pids)
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
	if len(pids) > 0 {
		used, err := cpu.stop()
		if err != nil {
			return fmt.Errorf("pull: CPU time: %w", err)
		}
		rn.res.ratio(rn.backend, rn.mSmallPullCPU(), p.name, int64(used), int64(len(blobs)))
	}
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
