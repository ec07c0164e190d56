package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/httpmw"
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

// pinTTL is how long the lock store openLocking opens remembers a pin.
func (c *Config) pinTTL() time.Duration {
	if c.redisEnabled() {
		return c.Redis.PinTTL
	}
	return memory.DefaultPinTTL
}

// openRegistry opens the storage driver and lock store the configuration
// names and builds the registry on them; closeAll releases both. With obs,
// the driver and the lock store are instrumented, and the abuse limits
// (on the same store) are opened into lim and enforced.
func openRegistry(ctx context.Context, cfg *Config, logger *slog.Logger, obs *observability, authz registry.Authorizer, lim *limits) (*registry.Registry, storage.Driver, locking.Store, func(), error) {
	driver, err := openStorage(ctx, cfg, logger)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("storage: %w", err)
	}
	store, err := openLocking(ctx, cfg, logger)
	if err != nil {
		driver.Close()
		return nil, nil, nil, nil, fmt.Errorf("redis: %w", err)
	}
	rawStore := store
	var metricsReg prometheus.Registerer
	if obs != nil {
		metricsReg = obs.registry
	}
	budget, err := cfg.Limits.newBudget(driver, metricsReg) // before wrapping: the driver itself takes the budget
	if err != nil {
		store.Close()
		driver.Close()
		return nil, nil, nil, nil, err
	}
	var uploads registry.UploadSlots
	if obs != nil && lim != nil {
		lim.open(cfg, store, obs.limits, logger)
		uploads = lim.uploads
	}
	if obs != nil {
		driver = obs.storage.Wrap(obs.tracing.storage(driver))
		store = obs.locking.Wrap(obs.tracing.locking(store, sessionBackend(cfg)), sessionBackend(cfg))
	}
	events, stopEvents, err := openNotifications(ctx, cfg, rawStore, logger, obs)
	if err != nil {
		store.Close()
		driver.Close()
		return nil, nil, nil, nil, err
	}
	closeAll := func() {
		stopEvents()
		store.Close()
		driver.Close()
	}
	pols, err := cfg.Policies.build()
	if err != nil {
		closeAll()
		return nil, nil, nil, nil, err
	}
	mirror, err := openProxy(cfg, driver, store, logger, metricsReg)
	if err != nil {
		closeAll()
		return nil, nil, nil, nil, err
	}
	deps := registry.Deps{
		Storage: driver, Locking: store, Logger: logger, Authorizer: authz,
		Budget: budget, Limits: cfg.Limits.registryLimits(), UploadSlots: uploads, Events: events,
		TagPolicy: pols.tags, Retention: pols.retention,
		Mirror: mirror, GCStorage: gcStorage(cfg.Registry.GC, driver), PinTTL: cfg.pinTTL(),
	}
	if obs != nil { // serve: GC yields to the traffic the fleet serves (gcpace.go)
		if deps.Activity, deps.GCStorage, closeAll, err = withGCYield(ctx, cfg, driver, rawStore, obs, logger, closeAll); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	reg, err := registry.New(ctx, cfg.Registry, deps)
	if err != nil {
		closeAll()
		return nil, nil, nil, nil, err
	}
	return reg, driver, store, closeAll, nil
}

// serve runs the registry until ctx is cancelled (SIGINT/SIGTERM), then
// drains: /readyz fails at once, the listener closes after
// http.shutdown_delay, and in-flight requests get http.shutdown_timeout to
// finish.
func serve(ctx context.Context, cfg *Config, logOut io.Writer) error {
	logger := newLogger(cfg.Log, logOut)
	cfg.Limits.setMemoryLimit(os.Getenv("GOMEMLIMIT"), logger)
	obs, err := newObservability()
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: the spans of the drain are flushed.
	if obs.tracing, err = openTracing(ctx, cfg.Tracing, logger); err != nil {
		return err
	}
	defer obs.tracing.shutdown(logger)
	sec, err := openSecurity(ctx, cfg, logger)
	if err != nil {
		return err
	}
	lim := &limits{}
	reg, driver, store, closeAll, err := openRegistry(ctx, cfg, logger, obs, sec.authorizer(), lim)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := startupProbe(ctx, driver, logger); err != nil {
		return err
	}
	if err := obs.watchRegistry(reg); err != nil {
		return err
	}
	stopBackground := startBackground(ctx, cfg, reg, logger)
	defer stopBackground()

	ready := newReadyChecker(reg, driver, store, logger, readyCacheFor)
	go sec.watchPolicy(ctx, cfg, logger)
	// Auth resolves the caller before the rate limit, which limits
	// authenticated callers per user.
	proxies, err := httpmw.ParseProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	front, err := withUI(cfg, reg, sec, ready, proxies, logger)
	if err != nil {
		return err
	}
	srv, err := newServers(ctx, cfg, sec.wrap(lim.wrap(front)), ready, obs, proxies, logger)
	if err != nil {
		return err
	}
	defer func() {
		m := reg.Metrics()
		logger.Info("final metrics", "pins_refused_total", m.PinsRefused, "gc_claims_refused_total", m.ClaimsRefused,
			"gc_runs_total", m.GCRuns, "gc_objects_deleted_total", m.GCObjectsDelete, "gc_bytes_reclaimed_total", m.GCBytesReclaim)
	}()
	errc := srv.start()
	select {
	case err := <-errc:
		srv.close()
		return err
	case <-ctx.Done():
	}
	return srv.drain(ready, errc)
}

// startBackground runs GC and the upload reaper until ctx is done (SIGTERM:
// a running GC pass stops and releases its lease at once); the returned
// function waits for both.
func startBackground(ctx context.Context, cfg *Config, reg *registry.Registry, logger *slog.Logger) func() {
	gcCtx, stopGC := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		reg.RunGCLoop(gcCtx)
	}()
	go func() {
		defer wg.Done()
		reg.RunUploadReaper(gcCtx)
	}()
	if cfg.Registry.GC.Interval > 0 {
		logger.Info("background garbage collection on", "interval", cfg.Registry.GC.Interval, "grace", cfg.Registry.GC.Grace)
	}
	return func() {
		stopGC()
		wg.Wait()
	}
}
