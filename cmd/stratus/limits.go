package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/membudget"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
)

// LimitsConfig is the `limits:` section: what one process may spend on
// its requests, whatever they carry.
type LimitsConfig struct {
	// Memory bounds the large buffers of all requests together (upload
	// part buffers, manifest bodies, referrers pages). A request that
	// would exceed it waits up to MemoryWait, then gets 503 with
	// Retry-After. Leave room under the container limit for the rest of
	// the process (about 64 MiB) and the Go runtime's headroom.
	Memory     storage.Size  `yaml:"memory"`
	MemoryWait time.Duration `yaml:"memory_wait"`
	// MinBodyRate (bytes/s; 0: off) is the slowest a request body may
	// arrive, averaged over BodyRateWindow after BodyRateGrace; a slower
	// one is cut off with 408 and its upload lease released.
	MinBodyRate    storage.Size  `yaml:"min_body_rate"`
	BodyRateWindow time.Duration `yaml:"body_rate_window"`
	BodyRateGrace  time.Duration `yaml:"body_rate_grace"`
}

// Defaults of the limits section.
const (
	defaultMemory         = 256 << 20
	defaultMemoryWait     = 2 * time.Second
	defaultBodyRateWindow = 30 * time.Second
	defaultBodyRateGrace  = 10 * time.Second
	// minMemory holds one S3 part buffer of the largest default (16 MiB
	// Azure blocks) with its small buffer; less could serve no upload.
	minMemory = 32 << 20
)

func (c *LimitsConfig) setDefaults() {
	if c.Memory == 0 {
		c.Memory = defaultMemory
	}
	if c.MemoryWait == 0 {
		c.MemoryWait = defaultMemoryWait
	}
	if c.BodyRateWindow == 0 {
		c.BodyRateWindow = defaultBodyRateWindow
	}
	if c.BodyRateGrace == 0 {
		c.BodyRateGrace = defaultBodyRateGrace
	}
}

// validate reports every invalid key of the section.
func (c *LimitsConfig) validate() error {
	var errs []error
	if c.Memory < minMemory {
		errs = append(errs, fmt.Errorf("limits.memory: %s is below %s, too little for one upload's buffers", c.Memory, storage.Size(minMemory)))
	}
	if c.MemoryWait < 0 {
		errs = append(errs, errors.New("limits.memory_wait: must not be negative"))
	}
	if c.MinBodyRate < 0 {
		errs = append(errs, errors.New("limits.min_body_rate: must not be negative (0 turns the check off)"))
	}
	if c.BodyRateWindow < time.Second {
		errs = append(errs, fmt.Errorf("limits.body_rate_window: %s is shorter than 1s; clients pause that long between writes", c.BodyRateWindow))
	}
	if c.BodyRateGrace < 0 {
		errs = append(errs, errors.New("limits.body_rate_grace: must not be negative"))
	}
	return errors.Join(errs...)
}

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
