package main

import (
	"golang.org/x/time/rate"

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
