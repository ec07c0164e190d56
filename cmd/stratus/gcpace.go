package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/stratus-registry/stratus/activity"
	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/pace"
)

// gcStorage is the driver garbage collection reads and deletes through:
// with registry.gc.max_rate, driver paced to that many requests per
// second (one limiter per process, shared by every pass it runs), so a
// pass leaves the machine to the requests it serves; without, nil (GC
// uses the driver itself).
func gcStorage(cfg registry.GCConfig, driver storage.Driver) storage.Driver {
	if cfg.MaxRate <= 0 {
		return nil
	}
	// A burst of one concurrency's worth lets a pass start its first
	// requests together, then it goes at the rate.
	burst := max(1, min(cfg.Concurrency, int(cfg.MaxRate)))
	return pace.Wrap(driver, rate.NewLimiter(rate.Limit(cfg.MaxRate), burst))
}

// gcYield is what `stratus serve` adds so that GC yields to the traffic
// the fleet serves: the publisher counting this replica's requests into
// the shared activity state, and the GC driver gated by that state.
type gcYield struct {
	// counter goes to registry.Deps.Activity.
	counter *activity.Publisher
	// driver goes to registry.Deps.GCStorage (nil: Storage itself).
	driver storage.Driver
	// stop ends the publisher (after one last publication).
	stop func()
}

// openGCYield publishes this replica's request count to act and, unless
// registry.gc.busy_share is 1, gates GC's store requests on the fleet's
// count, inside the max_rate limiter (a token first, then the turn, so
// the yielder times the store's answer, not the token wait). Only serve
// calls it: `stratus gc run` is an operator asking for a pass now, and
// it serves nothing to publish.
func openGCYield(ctx context.Context, cfg registry.GCConfig, driver storage.Driver, act locking.Activity, reg prometheus.Registerer, logger *slog.Logger) (*gcYield, error) {
	pub, err := activity.New(act, activity.Options{Registerer: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	y := &gcYield{counter: pub, driver: gcStorage(cfg, driver)}
	// Loading the configuration filled the default.
	if share := *cfg.BusyShare; share < 1 {
		m, err := pace.NewYieldMetrics(reg)
		if err != nil {
			return nil, err
		}
		yielder, err := pace.NewYielder(act, pace.YieldConfig{Share: share, Metrics: m, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("registry.gc.busy_share: %w", err)
		}
		gated := pace.WrapGate(driver, yielder)
		if y.driver = gated; cfg.MaxRate > 0 {
			y.driver = gcStorage(cfg, gated)
		}
	}
	// Until closeAll, not until ctx: a draining server still serves, and
	// GC elsewhere should still see it.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub.Run(pctx)
	}()
	y.stop = func() {
		cancel()
		<-done
	}
	return y, nil
}

// withGCYield opens gcYield on the unwrapped lock store (the activity
// calls have their own metrics) and returns what openRegistry hands the
// registry, and its closeAll extended to stop the publisher first. On
// error it has called closeAll.
func withGCYield(ctx context.Context, cfg *Config, driver storage.Driver, raw locking.Store, obs *observability, logger *slog.Logger, closeAll func()) (registry.ActivityCounter, storage.Driver, func(), error) {
	act, ok := raw.(locking.Activity)
	if !ok {
		closeAll()
		return nil, nil, nil, fmt.Errorf("locking: %T keeps no activity count", raw)
	}
	y, err := openGCYield(ctx, cfg.Registry.GC, driver, act, obs.registry, logger)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return y.counter, y.driver, func() { y.stop(); closeAll() }, nil
}
