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
	octx, cancel := context.WithTimeout(ctx, pr.OpTimeout)
	defer cancel()
	// Every contender writes only its own bucket, named after it.
	var before int64
	if rn.store.counter != nil {
		before = rn.store.counter.written(p.name)
	}
	start := time.Now()
	if _, err := p.reg.c.pushChunked(octx, "bench/fine", b, pr.FineChunk); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	el := time.Since(start)
	rn.res.throughput(rn.backend, rn.mFineChunked(), p.name, b.Size, 1, el, []time.Duration{el})
	if rn.store.counter != nil {
		rn.res.ratio(rn.backend, rn.mFineGrowth(), p.name, rn.store.counter.written(p.name)-before, b.Size)
	}
	return nil
}

// fineChunkedSummary, once the last backend of a run has its rounds,
// notes on each contender's MinIO row how its time compares with the same
// upload to the filesystem, round by round.
func (rn *runner) fineChunkedSummary() {
	if rn.backend != "minio" {
		return
	}
	m := rn.mFineChunked()
	for _, p := range rn.parts {
		if p.reg == nil {
			continue
		}
		s3 := rn.res.roundValues(rn.backend, m, p.name)
		fs := rn.res.roundValues("filesystem", m, p.name)
		if len(fs) == 0 || len(fs) != len(s3) {
			continue
		}
		var parts []string
		for i := range s3 {
			if s3[i] > 0 {
				// MB/s, so time on S3 / time on filesystem = fs / s3.
				parts = append(parts, fmt.Sprintf("%.2fx", fs[i]/s3[i]))
			}
		}
		rn.res.addRemark(rn.backend, m, p.name, "time ÷ filesystem time (R1 / R2): "+strings.Join(parts, " / "))
	}
}
