package main

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/membudget"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
)

// registryLimits is the registry's view of the section.
func (c *LimitsConfig) registryLimits() registry.Limits {
	return registry.Limits{MinBodyRate: int64(c.MinBodyRate), BodyRateWindow: c.BodyRateWindow, BodyRateGrace: c.BodyRateGrace}
}

// newBudget builds the process's memory budget, with its metrics on reg
// when reg is not nil, and puts driver's buffers under it.
func (c *LimitsConfig) newBudget(driver storage.Driver, reg prometheus.Registerer) (*membudget.Budget, error) {
	var obs membudget.Observer
	if reg != nil {
		m, err := membudget.NewMetrics(reg, int64(c.Memory))
		if err != nil {
			return nil, err
		}
		obs = m
	}
	b, err := membudget.New(int64(c.Memory), c.MemoryWait, obs)
	if err != nil {
		return nil, fmt.Errorf("limits.memory: %w", err)
	}
	if bd, ok := driver.(storage.Budgeted); ok {
		bd.SetBufferBudget(b)
	}
	return b, nil
}

// runtimeHeadroom is what the process needs beside the budgeted buffers:
// the Go runtime, connections, small per-request allocations.
const runtimeHeadroom = 128 << 20

// setMemoryLimit gives the Go runtime a soft memory limit of the budget
// plus headroom. The budget bounds the buffers held at once, but freed part
// buffers are garbage until the next collection, and with GOGC=100 alone the
// heap grows to about twice the budget (measured: 641 MiB peak RSS for 200
// concurrent 64 MiB pushes under a 256 MiB budget). An operator's
// GOMEMLIMIT wins.
func (c *LimitsConfig) setMemoryLimit(gomemlimit string, logger *slog.Logger) {
	if gomemlimit != "" {
		logger.Info("memory limit from GOMEMLIMIT", "gomemlimit", gomemlimit)
		return
	}
	limit := int64(c.Memory) + runtimeHeadroom
	debug.SetMemoryLimit(limit)
	logger.Debug("go memory limit set from limits.memory", "limit", storage.Size(limit))
}
