package main

import (
	"fmt"

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
