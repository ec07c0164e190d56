package main

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// LimitsConfig is the `limits:` section: what one process may spend on its
// requests, and the abuse limits shared by every replica through Redis (in
// process without it).
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
	// Rate limits requests per client IP, and per user once
	// authentication names one. Off unless requests_per_second is set.
	Rate RateConfig `yaml:"rate"`
	// UploadsPerRepository bounds the upload sessions open at once in one
	// repository.
	UploadsPerRepository int `yaml:"uploads_per_repository"`
	// UploadsPerUser bounds the upload sessions one authenticated user has
	// open at once, across repositories (anonymous uploads are bounded by
	// the repository limit alone).
	UploadsPerUser int `yaml:"uploads_per_user"`
}

// RateConfig is `limits.rate`.
type RateConfig struct {
	// RequestsPerSecond is the sustained rate; 0 turns rate limiting off.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// Burst is how many requests may arrive at once; by default one
	// second's worth (at least 1).
	Burst int `yaml:"burst"`
}

// DefaultUploadsPerRepository is limits.uploads_per_repository's default:
// far above what a CI fleet pushing one repository needs, low enough that
// one client cannot fill Redis with sessions.
const DefaultUploadsPerRepository = 1000

// DefaultUploadsPerUser is limits.uploads_per_user's default: a CI
// account pushing many images with parallel layers at once stays far
// below it.
const DefaultUploadsPerUser = 500

// maxRequestsPerSecond keeps the GCRA interval at or above the limiter's
// microsecond resolution.
const maxRequestsPerSecond = 1e6

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
	if c.UploadsPerRepository == 0 {
		c.UploadsPerRepository = DefaultUploadsPerRepository
	}
	if c.UploadsPerUser == 0 {
		c.UploadsPerUser = DefaultUploadsPerUser
	}
	if c.Rate.RequestsPerSecond > 0 && c.Rate.Burst == 0 {
		c.Rate.Burst = max(1, int(math.Ceil(c.Rate.RequestsPerSecond)))
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
	rps := c.Rate.RequestsPerSecond
	switch {
	case math.IsNaN(rps) || rps < 0 || rps > maxRequestsPerSecond:
		errs = append(errs, fmt.Errorf("limits.rate.requests_per_second: %g is outside 0..%g (0 turns rate limiting off)", rps, float64(maxRequestsPerSecond)))
	case rps == 0 && c.Rate.Burst != 0:
		errs = append(errs, errors.New("limits.rate.burst: set but limits.rate.requests_per_second is 0 (rate limiting off)"))
	}
	if c.Rate.Burst < 0 {
		errs = append(errs, errors.New("limits.rate.burst: must not be negative"))
	}
	if c.UploadsPerRepository < 0 {
		errs = append(errs, fmt.Errorf("limits.uploads_per_repository: %d is negative", c.UploadsPerRepository))
	}
	if c.UploadsPerUser < 0 {
		errs = append(errs, fmt.Errorf("limits.uploads_per_user: %d is negative", c.UploadsPerUser))
	}
	return errors.Join(errs...)
}
