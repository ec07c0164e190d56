package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"

	"github.com/stratus-registry/stratus/locking"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/ratelimit"
	"github.com/stratus-registry/stratus/registry"
)

// LimitsConfig is the `limits` section: abuse limits shared by every
// replica through Redis (in process without it).
type LimitsConfig struct {
	// Rate limits requests per client IP, and per user once
	// authentication names one. Off unless requests_per_second is set.
	Rate RateConfig `yaml:"rate"`
	// UploadsPerRepository bounds the upload sessions open at once in one
	// repository.
	UploadsPerRepository int `yaml:"uploads_per_repository"`
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

// maxRequestsPerSecond keeps the GCRA interval at or above the limiter's
// microsecond resolution.
const maxRequestsPerSecond = 1e6

func (c *LimitsConfig) setDefaults() {
	if c.UploadsPerRepository == 0 {
		c.UploadsPerRepository = DefaultUploadsPerRepository
	}
	if c.Rate.RequestsPerSecond > 0 && c.Rate.Burst == 0 {
		c.Rate.Burst = max(1, int(math.Ceil(c.Rate.RequestsPerSecond)))
	}
}

func (c *LimitsConfig) validate() error {
	var errs []error
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
	return errors.Join(errs...)
}

// limits are the limiters `serve` runs, on the lock store's Redis when
// there is one, so that every replica draws on one allowance.
type limits struct {
	rate    ratelimit.Limiter // nil: rate limiting off
	uploads registry.UploadSlots
	cfg     LimitsConfig
	metrics *ratelimit.Metrics
	logger  *slog.Logger
}

// open builds the limiters next to store (before any instrumenting
// wrapper, which hides the Redis client).
func (l *limits) open(cfg *Config, store locking.Store, metrics *ratelimit.Metrics, logger *slog.Logger) {
	*l = limits{cfg: cfg.Limits, metrics: metrics, logger: logger.With("component", "limits")}
	var slots ratelimit.Slots
	if rs, ok := store.(*lockredis.Store); ok {
		slots = ratelimit.NewRedisSlots(rs.Client(), cfg.Redis.KeyPrefix)
		if cfg.Limits.Rate.RequestsPerSecond > 0 {
			l.rate = ratelimit.NewRedis(rs.Client(), cfg.Redis.KeyPrefix)
		}
	} else {
		slots = ratelimit.NewMemorySlots()
		if cfg.Limits.Rate.RequestsPerSecond > 0 {
			l.rate = ratelimit.NewMemory(ratelimit.DefaultMaxKeys)
		}
	}
	l.uploads = ratelimit.UploadLimit{Slots: slots, Limit: cfg.Limits.UploadsPerRepository, Metrics: metrics}
	if l.rate != nil {
		l.logger.Info("rate limit on", "requests_per_second", cfg.Limits.Rate.RequestsPerSecond, "burst", cfg.Limits.Rate.Burst,
			"shared", cfg.redisEnabled())
	}
}

// wrap puts the rate limit in front of the registry. It must sit inside
// httpmw.Observe, which resolves the client IP.
//
// User is the hook for authentication: once the auth middleware puts the
// authenticated user in the request context, return it here and
// authenticated requests are limited per user instead of per IP.
func (l *limits) wrap(api http.Handler) http.Handler {
	if l.rate == nil {
		return api
	}
	return ratelimit.Middleware(ratelimit.Options{
		Limiter: l.rate,
		Rate:    ratelimit.Rate{PerSecond: l.cfg.Rate.RequestsPerSecond, Burst: l.cfg.Rate.Burst},
		User:    nil,
		Metrics: l.metrics,
		Logger:  l.logger,
	})(api)
}
