package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/instrument"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// BenchmarkBlobPull pulls blobs over HTTP from one registry on MinIO, 8 at
// a time, with the in-process and the Redis lock store (and with Redis
// pinned one key per round trip, as before PinAll), and reports the
// object-store requests and lock-store round trips each pull makes beside
// its throughput, and the CPU time per pull of this process (the registry
// and the clients, not MinIO or Redis). It is the pull loop to profile:
//
//	go test -run '^$' -bench BlobPull -cpuprofile /tmp/pull.prof ./registry/
func BenchmarkBlobPull(b *testing.B) {
	mio := s3test.Start(b)
	redis := lockingtest.StartRedis(b)
	newRedis := func(b *testing.B) locking.Store {
		cfg := lockredis.Config{Addrs: []string{redis.Addr()}}
		cfg.SetDefaults()
		s, err := lockredis.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	for _, lc := range []struct {
		name   string
		new    func(b *testing.B) locking.Store
		perKey bool // the pull as it was before PinAll: one round trip per key
	}{
		{"memory", func(b *testing.B) locking.Store { return memory.New() }, false},
		{"redis", newRedis, false},
		{"redis-per-key", newRedis, true},
	} {
		for _, size := range []int64{1 << 20, 64 << 20} {
			b.Run(fmt.Sprintf("locks=%s/size=%s", lc.name, storage.Size(size)), func(b *testing.B) {
				benchPull(b, mio, lc.new(b), lc.perKey, size, 8)
			})
		}
		// One client: each pull's latency, where round trips in series
		// show (8 clients on 2 cores measure CPU instead).
		b.Run(fmt.Sprintf("locks=%s/size=1MiB/clients=1", lc.name), func(b *testing.B) {
			benchPull(b, mio, lc.new(b), lc.perKey, 1<<20, 1)
		})
	}
}

// perKeyPins pins a group one key at a time, a round trip each.
type perKeyPins struct{ locking.Store }

func (p perKeyPins) PinAll(ctx context.Context, keys ...string) error {
	var refused []string
	for _, k := range keys {
		err := p.Pin(ctx, k)
		switch {
		case errors.Is(err, locking.ErrDeleting):
			refused = append(refused, k)
		case err != nil:
			return err
		}
	}
	if refused != nil {
		return &locking.RefusedError{Keys: refused}
	}
	return nil
}

func benchPull(b *testing.B, mio *s3test.Server, locks locking.Store, perKey bool, size int64, clients int) {
	ctx := context.Background()
	defer locks.Close()
	cfg := mio.Config(fmt.Sprintf("pullbench-%d", time.Now().UnixNano()))
	cfg.SetDefaults()
	raw, err := s3.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	metrics := prometheus.NewRegistry()
	m, err := instrument.NewMetrics(metrics)
	if err != nil {
		b.Fatal(err)
	}
	pins := &countingPins{Store: locks}
	var served locking.Store = pins
	if perKey {
		served = perKeyPins{pins}
	}
	reg, err := New(ctx, Config{}, Deps{Storage: m.Wrap(raw), Locking: served})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	blobs := make([]string, max(1, min(16, int((256<<20)/size))))
	for i := range blobs {
		blobs[i] = benchPushBlob(b, hc, srv.URL, size)
	}

	before, err := instrument.OpCounts(metrics)
	if err != nil {
		b.Fatal(err)
	}
	callsBefore := pins.calls.Load()
	cpuBefore, cpuOK := processCPU()
	var next atomic.Int64
	b.SetBytes(size)
	pull := func(buf []byte) bool {
		d := blobs[int(next.Add(1))%len(blobs)]
		if err := benchGetBlob(hc, srv.URL+"/v2/bench/blobs/"+d, size, buf); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
	b.ResetTimer()
	if clients == 1 {
		buf := make([]byte, 256<<10)
		for range b.N {
			if !pull(buf) {
				break
			}
		}
	} else {
		// clients/GOMAXPROCS per core: 8 clients on 2 cores, as the bench
		// command pulls.
		b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 256<<10)
			for pb.Next() && pull(buf) {
			}
		})
	}
	b.StopTimer()
	if cpuAfter, ok := processCPU(); ok && cpuOK {
		// The registry and its clients share this process (MinIO and
		// Redis do not), so this is the registry's CPU per pull plus a
		// client's read of the body.
		b.ReportMetric(float64(cpuAfter-cpuBefore)/float64(b.N), "cpu-ns/op")
	}
	after, err := instrument.OpCounts(metrics)
	if err != nil {
		b.Fatal(err)
	}
	var storeReqs uint64
	diff := instrument.Diff(before, after)
	for op, n := range diff {
		if op != instrument.OpSignedURL { // signing is local, not a request
			storeReqs += n
		}
	}
	b.Logf("%d pulls: store requests %v", b.N, diff)
	b.ReportMetric(float64(storeReqs)/float64(b.N), "store-req/op")
	b.ReportMetric(float64(pins.calls.Load()-callsBefore)/float64(b.N), "lock-calls/op")
}

// benchPushBlob pushes size random bytes monolithically and returns the
// digest.
func benchPushBlob(b *testing.B, hc *http.Client, base string, size int64) string {
	data := make([]byte, size)
	rand.Read(data)
	d := digest.FromBytes(data).String()
	resp, err := hc.Post(base+"/v2/bench/blobs/uploads/", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		b.Fatalf("POST upload: %s", resp.Status)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(http.MethodPut, loc+sep+"digest="+d, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	resp, err = hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("PUT upload: %s", resp.Status)
	}
	return d
}

// benchGetBlob pulls url and checks that size bytes came back (the digest
// is not hashed: on 2 cores the client's hashing would take the server's CPU).
func benchGetBlob(hc *http.Client, url string, size int64, buf []byte) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
	if err != nil {
		return fmt.Errorf("GET %s: %w after %d bytes", url, err, n)
	}
	if resp.StatusCode != http.StatusOK || n != size {
		return fmt.Errorf("GET %s: %s, %d of %d bytes", url, resp.Status, n, size)
	}
	return nil
}
