package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/stratus-registry/stratus/auth"
	"github.com/stratus-registry/stratus/locking"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/ratelimit"
	"github.com/stratus-registry/stratus/registry"
)

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
	l.uploads = ratelimit.UploadLimit{
		Slots: slots, Limit: cfg.Limits.UploadsPerRepository, Metrics: metrics,
		PerUser: cfg.Limits.UploadsPerUser, User: func(ctx context.Context) string { return auth.IdentityFrom(ctx).Name },
	}
	if l.rate != nil {
		l.logger.Info("rate limit on", "requests_per_second", cfg.Limits.Rate.RequestsPerSecond, "burst", cfg.Limits.Rate.Burst,
			"shared", cfg.redisEnabled())
	}
}

// wrap puts the rate limit in front of the registry. It must sit inside
// httpmw.Observe, which resolves the client IP, and inside auth's
// middleware, whose identity keys authenticated requests per user instead
// of per IP.
func (l *limits) wrap(api http.Handler) http.Handler {
	if l.rate == nil {
		return api
	}
	return ratelimit.Middleware(ratelimit.Options{
		Limiter: l.rate,
		Rate:    ratelimit.Rate{PerSecond: l.cfg.Rate.RequestsPerSecond, Burst: l.cfg.Rate.Burst},
		User:    func(r *http.Request) string { return auth.IdentityFrom(r.Context()).Name },
		Metrics: l.metrics,
		Logger:  l.logger,
	})(api)
}
