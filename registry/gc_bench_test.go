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

	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// BenchmarkGCPass measures one GC pass over a generated store on MinIO with
// Redis: 10,000 manifests and 50,000 blobs (a tenth with -short), half of
// the manifests tagged and half untagged and collectable. It reports
// objects per second for the mark phase and for the sweep phase.
//
//	go test -run '^$' -bench GCPass -benchtime 1x ./registry/
func BenchmarkGCPass(b *testing.B) {
	repos, perRepo, layers := 100, 100, 4
	if testing.Short() {
		repos = 10
	}
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
	reg, err := New(ctx, Config{PinTimeout: time.Millisecond, GC: GCConfig{Grace: 2 * time.Millisecond, Untagged: "delete", UntaggedAge: 2 * time.Millisecond, Concurrency: 16}},
		Deps{Storage: store, Locking: locks})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		start := time.Now()
		objects := generateStore(b, store, repos, perRepo, layers)
		b.Logf("generated %d objects (%d manifests, %d blobs) in %s", objects, repos*perRepo, repos*perRepo*(layers+1), time.Since(start).Round(time.Second))
		time.Sleep(10 * time.Millisecond)
		b.StartTimer()
		rep, err := reg.RunGC(ctx, false)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		markObjects := rep.ManifestsExamined + rep.LinksExamined
		sweepObjects := rep.BlobsExamined
		b.ReportMetric(float64(markObjects)/rep.MarkSeconds, "mark-objects/s")
		b.ReportMetric(float64(sweepObjects)/rep.SweepSeconds, "sweep-objects/s")
		b.ReportMetric(float64(rep.BlobsDeleted+rep.ManifestsDeleted+rep.LinksDeleted), "deleted")
		b.Logf("mark %.1fs over %d manifests+links, sweep %.1fs over %d blobs; deleted %d manifests, %d blobs, %d links",
			rep.MarkSeconds, markObjects, rep.SweepSeconds, sweepObjects, rep.ManifestsDeleted, rep.BlobsDeleted, rep.LinksDeleted)
	}
}

// generateStore writes the bucket layout directly (records, data, links,
// manifests, tags, catalog), which is what a registry would have after the
// same pushes, in a fraction of the time.
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
					content := fmt.Sprintf("%s/%d/%d", name, m, l)
					d := computeDigest("sha256", []byte(content))
					id := newUploadID()
					rec := encodeBlobRecord(id, int64(len(content)))
					for _, kv := range [][2]string{{dataKey(id), content}, {blobRecordKey(d), string(rec)}, {linkKey(name, d), d.String()}} {
						if err := put(kv[0], kv[1]); err != nil {
							return err
						}
					}
					if l == 0 {
						cfg = d
						continue
					}
					descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, d, len(content)))
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
