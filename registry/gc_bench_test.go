package registry

import (
	"context"
	"fmt"
	"github.com/opencontainers/go-digest"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	lockinstrument "github.com/stratus-registry/stratus/locking/instrument"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/instrument"
	"github.com/stratus-registry/stratus/storage/pace"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// BenchmarkGCPass measures GC passes over a generated store on MinIO with
// Redis, at 10,000, 50,000 and 100,000 blobs (a fifth of the manifests at
// 10k; -short: the 10k size only), half of the manifests tagged and half
// untagged and collectable. The first pass collects the garbage; then
// steady passes (nothing to delete): one by a registry without the mark
// cache, one by the same uncached collector through the yielder `stratus
// serve` uses with no traffic to yield to (what yielding costs when there
// is nothing to yield to), and one by the registry whose cache the first
// pass filled. It reports objects per second through each whole pass, and
// for the mark and the sweep.
//
//	go test -run '^$' -bench GCPass -benchtime 1x -timeout 2h ./registry/
func BenchmarkGCPass(b *testing.B) {
	for _, repos := range []int{20, 100, 200} {
		if testing.Short() && repos > 20 {
			continue
		}
		perRepo, layers := 100, 4
		b.Run(fmt.Sprintf("blobs=%d", repos*perRepo*(layers+1)), func(b *testing.B) {
			benchGCPass(b, repos, perRepo, layers)
		})
	}
}

func benchGCPass(b *testing.B, repos, perRepo, layers int) {
	ctx := context.Background()
	mio := s3test.Start(b)
	cfg := mio.Config(fmt.Sprintf("gcbench-%d", time.Now().UnixNano()))
	cfg.SetDefaults()
	store, err := s3.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	redis := lockingtest.StartRedis(b)
	rcfg := lockredis.Config{Addrs: []string{redis.Addr()}}
	rcfg.SetDefaults()
	locks, err := lockredis.New(ctx, rcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer locks.Close()
	// Both wrappers count requests, so each pass reports what it cost the
	// object store and Redis, by operation.
	metrics := prometheus.NewRegistry()
	sm, err := instrument.NewMetrics(metrics)
	if err != nil {
		b.Fatal(err)
	}
	lm, err := lockinstrument.NewMetrics(metrics)
	if err != nil {
		b.Fatal(err)
	}
	// uncached is the same registry without the mark cache: the steady
	// pass it runs shows what the cache saves, in the same run.
	newReg := func(markCache int) *Registry {
		reg, err := New(ctx, Config{PinTimeout: time.Millisecond, GC: GCConfig{Grace: 2 * time.Millisecond, Untagged: "delete", UntaggedAge: 2 * time.Millisecond, Concurrency: 16, MarkCache: &markCache}},
			Deps{Storage: sm.Wrap(store), Locking: lm.Wrap(locks, "redis")})
		if err != nil {
			b.Fatal(err)
		}
		return reg
	}
	// The cache is sized to hold every tag and manifest of the store, as
	// an operator of a registry this size would set registry.gc.mark_cache.
	reg, uncached := newReg(max(defaultMarkCache, 2*repos*perRepo)), newReg(0)
	yielder, err := pace.NewYielder(locks, pace.YieldConfig{Share: DefaultGCBusyShare})
	if err != nil {
		b.Fatal(err)
	}
	yielding, err := New(ctx, uncached.cfg, Deps{Storage: sm.Wrap(store), Locking: lm.Wrap(locks, "redis"),
		GCStorage: pace.WrapGate(sm.Wrap(store), yielder)})
	if err != nil {
		b.Fatal(err)
	}
	passes := []struct {
		name string
		reg  *Registry
	}{{"collecting", reg}, {"steady-uncached", uncached}, {"steady-uncached-yielder-idle", yielding}, {"steady", reg}}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		start := time.Now()
		objects := generateStore(b, store, repos, perRepo, layers)
		b.Logf("generated %d objects (%d manifests, %d blobs) in %s", objects, repos*perRepo, repos*perRepo*(layers+1), time.Since(start).Round(time.Second))
		// The mark cache takes only objects older than the pass by
		// gc's minCacheAge (30 s), as most of a registry is.
		time.Sleep(31 * time.Second)
		for _, p := range passes {
			pass := p.name
			before, beforeMs := requestCounts(b, metrics), requestSeconds(b, metrics)
			b.StartTimer()
			rep, err := p.reg.RunGC(ctx, false)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			reportGCPass(b, pass, rep)
			b.Logf("%s pass requests: %v", pass, instrument.Diff(before, requestCounts(b, metrics)))
			b.Logf("%s pass time in requests (ms, summed over concurrent ones): %v", pass, instrument.Diff(beforeMs, requestSeconds(b, metrics)))
		}
		// The store's own limit in the same run: one stream listing every
		// key once, as a steady pass must at least.
		start = time.Now()
		keys := listAll(b, store)
		el := time.Since(start)
		b.Logf("listing the whole bucket in one stream: %d keys in %.1fs (%.0f keys/s)", keys, el.Seconds(), float64(keys)/el.Seconds())
		b.ReportMetric(float64(keys)/el.Seconds(), "bucket-list-keys/s")
	}
}

func reportGCPass(b *testing.B, pass string, rep *GCReport) {
	markObjects := rep.ManifestsExamined + rep.LinksExamined
	sweepObjects := rep.BlobsExamined
	all := float64(markObjects + sweepObjects)
	b.ReportMetric(all/rep.DurationSeconds, pass+"-pass-objects/s")
	b.ReportMetric(float64(markObjects)/rep.MarkSeconds, pass+"-mark-objects/s")
	b.ReportMetric(float64(sweepObjects)/rep.SweepSeconds, pass+"-sweep-objects/s")
	b.Logf("%s pass: %.1fs over %.0f objects (%.0f/s); mark %.1fs over %d manifests+links, sweep %.1fs over %d blobs; deleted %d manifests, %d blobs, %d links; backfilled %d; mark cache hits %d",
		pass, rep.DurationSeconds, all, all/rep.DurationSeconds, rep.MarkSeconds, markObjects, rep.SweepSeconds, sweepObjects,
		rep.ManifestsDeleted, rep.BlobsDeleted, rep.LinksDeleted, rep.DataIndexed, rep.MarkCacheHits)
}

// listAll lists every key of the store, page by page, and counts them.
func listAll(b *testing.B, store storage.Driver) int {
	n, after := 0, ""
	for {
		page, err := store.List(context.Background(), "", after, 0)
		if err != nil {
			b.Fatal(err)
		}
		n += len(page.Objects)
		if !page.More || len(page.Objects) == 0 {
			return n
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

// requestCounts reads how many store and Redis operations were made so
// far, by operation; Redis operations are prefixed "redis_".
func requestCounts(b *testing.B, g prometheus.Gatherer) map[string]uint64 {
	counts, err := instrument.OpCounts(g)
	if err != nil {
		b.Fatal(err)
	}
	families, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "stratus_locking_operation_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					counts["redis_"+l.GetValue()] += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return counts
}

// requestSeconds reads how long the store and Redis operations made so
// far took in all, in milliseconds by operation (concurrent operations
// add up, so this says where a pass waits, not how long it took).
func requestSeconds(b *testing.B, g prometheus.Gatherer) map[string]uint64 {
	families, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	ms := map[string]uint64{}
	for _, f := range families {
		prefix := ""
		switch f.GetName() {
		case "stratus_storage_operation_duration_seconds":
		case "stratus_locking_operation_duration_seconds":
			prefix = "redis_"
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					ms[prefix+l.GetValue()] += uint64(m.GetHistogram().GetSampleSum() * 1000)
				}
			}
		}
	}
	return ms
}

// generateStore writes the bucket layout directly (records, data, links,
// manifests, tags, catalog), which is what a registry would have after the
// same pushes (layout v2: data index entries and complete links), in a
// fraction of the time.
func generateStore(b *testing.B, store storage.Driver, repos, perRepo, layers int) int64 {
	ctx := context.Background()
	var n atomic.Int64
	put := func(key, body string) error {
		n.Add(1)
		_, err := store.Put(ctx, key, strings.NewReader(body), storage.PutOptions{Size: int64(len(body))})
		return err
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(32)
	for r := 0; r < repos; r++ {
		name := fmt.Sprintf("bench/r%03d", r)
		eg.Go(func() error { return put(catalogKey(name), name) })
		for m := 0; m < perRepo; m++ {
			eg.Go(func() error {
				var descs []string
				var cfg digest.Digest
				for l := 0; l <= layers; l++ {
					payload := fmt.Sprintf("%s/%d/%d", name, m, l)
					d := computeDigest("sha256", []byte(payload))
					id := newUploadID()
					rec := encodeBlobRecord(id, int64(len(payload)))
					link := content.EncodeLink(content.Blob{Digest: d, Size: int64(len(payload)), Data: content.DataRef(dataKey(id))})
					for _, kv := range [][2]string{{dataKey(id), payload}, {content.DataIndexKey(id, d), ""}, {blobRecordKey(d), string(rec)}, {linkKey(name, d), string(link)}} {
						if err := put(kv[0], kv[1]); err != nil {
							return err
						}
					}
					if l == 0 {
						cfg = d
						continue
					}
					descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, d, len(payload)))
				}
				body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}`,
					mtOCIManifest, cfg, len(fmt.Sprintf("%s/%d/0", name, m)), strings.Join(descs, ","))
				md := computeDigest("sha256", []byte(body))
				if err := put(manifestKey(name, md), string(encodeStoredManifest(mtOCIManifest, []byte(body)))); err != nil {
					return err
				}
				if m%2 == 0 {
					return put(tagKey(name, fmt.Sprintf("t%d", m)), md.String())
				}
				return nil
			})
		}
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	return n.Load()
}
