package main

// The fine-chunked upload: one large blob in 1 MiB PATCHes (regctl's
// default), the case where an object store's 5 MiB minimum part size
// forces the registry to stage what it receives.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

func (rn *runner) mFineChunked() metricDef {
	return mLargePush(rn.prof.FineChunkedSize, "chunked", rn.prof.FineChunk)
}

func (rn *runner) mFineGrowth() metricDef {
	return metricDef{"MinIO growth during " + rn.mFineChunked().Name, unitTimes, ""}
}

// fineChunked pushes FineChunkedSize in FineChunk PATCHes and, on MinIO,
// records how many bytes the contender made MinIO write per blob byte.
func (rn *runner) fineChunked(ctx context.Context, p *participant, round int) error {
	pr := rn.prof
	b, err := rn.gen.newBlob(pr.FineChunkedSize, rn.blobName("fine", p.name, round, 0))
	if err != nil {
		return err
	}
	if rn.fineGaveUp[p.name] {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, pr.FineTimeout)
	defer cancel()
	// Every contender writes only its own bucket, named after it.
	var before int64
	if rn.store.counter != nil {
		before = rn.store.counter.written(p.name)
	}
	start := time.Now()
	if _, err := p.reg.c.pushChunked(octx, "bench/fine", b, pr.FineChunk); err != nil {
		if ctx.Err() == nil && octx.Err() != nil {
			// A contender that cannot finish in FineTimeout is not run
			// again: its bound is the figure.
			rn.fineGaveUp[p.name] = true
			rn.res.setNote(rn.backend, rn.mFineChunked(), p.name, fmt.Sprintf("did not finish within %s (below %.1f MB/s); not run again", pr.FineTimeout, float64(b.Size)/1e6/pr.FineTimeout.Seconds()))
			return nil
		}
		return fmt.Errorf("push: %w", err)
	}
	el := time.Since(start)
	rn.res.throughput(rn.backend, rn.mFineChunked(), p.name, b.Size, 1, el, []time.Duration{el})
	if rn.store.counter != nil {
		rn.res.ratio(rn.backend, rn.mFineGrowth(), p.name, rn.store.counter.written(p.name)-before, b.Size)
	}
	return nil
}

// fineChunkedSummary notes on each contender's MinIO row how its time
// compares with the same upload to the filesystem, round by round (once
// both backends have run).
func fineChunkedSummary(res *results, prof profile, contenders []string) {
	m := mLargePush(prof.FineChunkedSize, "chunked", prof.FineChunk)
	for _, name := range contenders {
		s3 := res.roundValues("minio", m, name)
		fs := res.roundValues("filesystem", m, name)
		// A run cut short may hold fewer rounds on one backend: pair those
		// both have.
		n := min(len(s3), len(fs))
		if n == 0 {
			continue
		}
		var parts []string
		for i := range n {
			if s3[i] > 0 {
				// MB/s, so time on S3 / time on filesystem = fs / s3.
				parts = append(parts, fmt.Sprintf("%.2fx", fs[i]/s3[i]))
			}
		}
		res.addRemark("minio", m, name, "time ÷ filesystem time (R1 / R2): "+strings.Join(parts, " / "))
	}
}
