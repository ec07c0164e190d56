package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/filesystem"
	"github.com/stratus-registry/stratus/storage/gcs"
	"github.com/stratus-registry/stratus/storage/inmemory"
	"github.com/stratus-registry/stratus/storage/s3"
)

func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStorage picks the driver with an explicit switch: a driver exists in
// the binary because it is named here, not because of an init side effect.
func openStorage(ctx context.Context, cfg *Config, logger *slog.Logger) (storage.Driver, error) {
	switch cfg.Storage.Driver {
	case DriverFilesystem:
		return filesystem.New(cfg.Storage.Filesystem)
	case DriverInmemory:
		logger.Warn("storage driver inmemory keeps everything in this process: data is lost on exit")
		return inmemory.New(), nil
	case DriverS3:
		return s3.New(ctx, cfg.Storage.S3, logger.With("driver", "s3"))
	case DriverAzure:
		return azure.New(ctx, cfg.Storage.Azure, logger.With("driver", "azure"))
	case DriverGCS:
		return gcs.New(ctx, cfg.Storage.GCS, logger.With("driver", "gcs"))
	}
	return nil, fmt.Errorf("storage.driver: unknown driver %q", cfg.Storage.Driver)
}

func openLocking(ctx context.Context, cfg *Config, logger *slog.Logger) (locking.Store, error) {
	if !cfg.redisEnabled() {
		logger.Warn("no redis configured: upload sessions and leases are kept in this process, so only ONE replica is safe; set redis.addrs to run several")
		return memory.New(), nil
	}
	return lockredis.New(ctx, cfg.Redis, logger.With("component", "redis"))
}

// openRegistry opens the storage driver and lock store the configuration
// names and builds the registry on them; closeAll releases both.
func openRegistry(ctx context.Context, cfg *Config, logger *slog.Logger) (*registry.Registry, storage.Driver, locking.Store, func(), error) {
	driver, err := openStorage(ctx, cfg, logger)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("storage: %w", err)
	}
	store, err := openLocking(ctx, cfg, logger)
	if err != nil {
		driver.Close()
		return nil, nil, nil, nil, fmt.Errorf("redis: %w", err)
	}
	closeAll := func() {
		store.Close()
		driver.Close()
	}
	reg, err := registry.New(ctx, cfg.Registry, registry.Deps{Storage: driver, Locking: store, Logger: logger})
	if err != nil {
		closeAll()
		return nil, nil, nil, nil, err
	}
	return reg, driver, store, closeAll, nil
}

// writeMetrics renders the counters in the Prometheus text format.
func writeMetrics(w http.ResponseWriter, m registry.Metrics) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, c := range []struct {
		name, kind, help string
		value            float64
	}{
		{"stratus_pins_refused_total", "counter", "Pins refused because GC was deleting the digest.", float64(m.PinsRefused)},
		{"stratus_gc_claims_refused_total", "counter", "GC claims refused because a request had pinned the object.", float64(m.ClaimsRefused)},
		{"stratus_gc_runs_total", "counter", "GC passes run by this replica.", float64(m.GCRuns)},
		{"stratus_gc_failures_total", "counter", "GC passes that ended with an error.", float64(m.GCFailures)},
		{"stratus_gc_objects_deleted_total", "counter", "Objects deleted by GC.", float64(m.GCObjectsDelete)},
		{"stratus_gc_bytes_reclaimed_total", "counter", "Blob bytes reclaimed by GC.", float64(m.GCBytesReclaim)},
		{"stratus_gc_last_duration_seconds", "gauge", "Duration of the last GC pass.", m.GCLastDuration.Seconds()},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", c.name, c.help, c.name, c.kind, c.name, c.value)
	}
}

// serve runs the registry until ctx is cancelled (SIGINT/SIGTERM), then
// drains in-flight requests for at most http.shutdown_timeout.
func serve(ctx context.Context, cfg *Config, logOut io.Writer) error {
	logger := newLogger(cfg.Log, logOut)
	reg, driver, store, closeAll, err := openRegistry(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	gcCtx, stopGC := context.WithCancel(ctx)
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		reg.RunGCLoop(gcCtx)
	}()
	reaperDone := make(chan struct{})
	go func() {
		defer close(reaperDone)
		reg.RunUploadReaper(gcCtx)
	}()
	defer func() {
		stopGC()
		<-gcDone
		<-reaperDone
	}()
	if cfg.Registry.GC.Interval > 0 {
		logger.Info("background garbage collection on", "interval", cfg.Registry.GC.Interval, "grace", cfg.Registry.GC.Grace)
	}

	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	ready := readiness(reg, driver, store, logger)
	// No http.ServeMux in front of the registry: it would clean paths and
	// answer "/v2/a/../b" with a redirect, where a registry must answer
	// NAME_INVALID and store nothing.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			health(w, r)
		case "/readyz":
			ready.ServeHTTP(w, r)
		case "/metrics":
			writeMetrics(w, reg.Metrics())
		default:
			reg.ServeHTTP(w, r)
		}
	})

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http.addr: %w", err)
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	tlsOn := cfg.HTTP.TLS.Cert != ""
	if tlsOn {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	logger.Info("stratus listening", "addr", ln.Addr().String(), "tls", tlsOn,
		"storage", cfg.Storage.Driver, "sessions", sessionBackend(cfg), "version", version)

	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- hs.ServeTLS(ln, cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key)
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "drain_timeout", cfg.HTTP.ShutdownTimeout)
	defer func() {
		m := reg.Metrics()
		logger.Info("final metrics", "pins_refused_total", m.PinsRefused, "gc_claims_refused_total", m.ClaimsRefused,
			"gc_runs_total", m.GCRuns, "gc_objects_deleted_total", m.GCObjectsDelete, "gc_bytes_reclaimed_total", m.GCBytesReclaim)
	}()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readiness answers 200 when the object store answers and has room. The
// session store is reported but does not make the replica unready: every
// replica shares it, and pulls must go on while it is down (pushes answer
// 503 meanwhile). Probes are often unauthenticated: the body says what is
// wrong, the log says why (no paths, keys or endpoints in the answer).
func readiness(reg *registry.Registry, d storage.Driver, s locking.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := d.Stat(ctx, "health/readiness-probe"); err != nil && !errors.Is(err, storage.ErrNotFound) {
			logger.Warn("not ready: storage probe failed", "err", err)
			http.Error(w, "not ready: storage backend unavailable", http.StatusServiceUnavailable)
			return
		}
		if reg.StorageFull() {
			http.Error(w, "not ready: storage full (a write failed for lack of space)", http.StatusServiceUnavailable)
			return
		}
		if _, err := s.Get(ctx, "readiness-probe"); err != nil && !errors.Is(err, locking.ErrNotFound) {
			logger.Warn("session store unavailable: pushes fail until it is back", "err", err)
			fmt.Fprintln(w, "degraded: session store (redis) unavailable; pushes fail, pulls work")
			return
		}
		fmt.Fprintln(w, "ok")
	})
}
