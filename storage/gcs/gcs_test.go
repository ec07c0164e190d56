package gcs_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/gcs"
	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
)

func TestMain(m *testing.M) { os.Exit(gcstest.Main(m)) }

// newTestDriver opens a driver and closes it when the test ends.
func newTestDriver(t testing.TB, cfg gcs.Config) *gcs.Driver {
	t.Helper()
	d, err := gcs.New(context.Background(), cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("gcs.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func uniqueRoot(name string) string { return name + "-" + strings.ToLower(rand.Text()) }

func TestDriver(t *testing.T) {
	srv := gcstest.Start(t)
	cfg := srv.Config(uniqueRoot("stratus"))
	drivertest.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) })
}

// TestDriverSmallChunks runs the suite with the smallest chunk_size, at
// the bucket root of a bucket of its own: objects of a few MiB then have
// hundreds of parts, so Commit composes in several levels, and no prefix
// mapping hides a bug.
func TestDriverSmallChunks(t *testing.T) {
	srv := gcstest.Start(t)
	cfg := srv.Config("")
	cfg.Bucket = srv.NewBucket(t)
	cfg.ChunkSize = 256 << 10
	drivertest.RunWith(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) },
		drivertest.Config{LargeSize: 40 << 20})
}
