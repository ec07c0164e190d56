package azure_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/azure/azuretest"
	"github.com/stratus-registry/stratus/storage/drivertest"
)

func TestMain(m *testing.M) { os.Exit(azuretest.Main(m)) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newTestDriver opens a driver and closes it when the test ends.
func newTestDriver(t testing.TB, cfg azure.Config) *azure.Driver {
	t.Helper()
	d, err := azure.New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("azure.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDriver(t *testing.T) {
	srv := azuretest.Start(t)
	cfg := srv.Config("stratus-" + strings.ToLower(rand.Text()))
	drivertest.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) })
}

// TestDriverContainerRoot runs the suite again with keys at the container
// root, in a container of its own, through a connection string, so that
// no prefix mapping hides a bug.
func TestDriverContainerRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran under a root directory")
	}
	srv := azuretest.Start(t)
	cfg := azure.Config{
		Container:        srv.NewContainer(t),
		ConnectionString: srv.ConnectionString(),
		MaxRetries:       new(2),
	}
	drivertest.RunWith(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) },
		drivertest.Config{LargeSize: 32 << 20})
}
