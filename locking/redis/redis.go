// Package redis is the locking.Store a fleet of replicas shares: leases,
// GC pins and upload sessions in Redis (standalone, Sentinel or Cluster).
//
// Every check-then-write is one Lua script, so it is atomic on the server.
// Keys that one script touches share a {hash tag}, so they live in one
// cluster slot:
//
//	<prefix>lease:{<key>}             "<holder>:<token>", expires with the lease
//	<prefix>lease:{<key>}:token       last token issued for <key>
//	<prefix>pin:{<digest>}            last pin time, µs since the epoch (server clock)
//	<prefix>pin:{<digest>}:deleting   present while a GC has claimed <digest>
//	<prefix>session:{upload:<id>}     the session record; its tag matches its
//	                                  lease key, locking.SessionLeaseKey(id)
//
// Time: pins are stamped with the Redis server's clock (TIME inside the
// script), never the replica's, so every pin is on one clock whatever the
// replicas' skew. Store.Now reads that clock, and a GC should take its mark
// start from it. (In a cluster each node stamps the digests it owns, so
// the nodes' NTP skew must stay well under the GC grace period.)
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking"
)

// Store implements locking.Store on Redis.
type Store struct {
	client goredis.UniversalClient
	prefix string
	pinTTL time.Duration
	logger *slog.Logger
}

var _ locking.Store = (*Store)(nil)

// New connects to Redis. cfg gets its defaults applied and is validated.
// An unreachable Redis is not an error here: the replica starts, its
// readiness check fails and writes answer 503 until Redis is back. A
// server that answers but refuses us (bad password, bad db) is an error.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, err
	}
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:        cfg.Addrs,
		MasterName:   cfg.MasterName,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DB:           cfg.DB,
		TLSConfig:    tlsCfg,
		PoolSize:     cfg.PoolSize,
		MinIdleConns: cfg.MinIdleConns,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		// No automatic retries: go-redis would resend a command whose reply
		// was lost, and Acquire, Claim and Create are not idempotent (the
		// resend would report ErrHeld/false/ErrExists for our own success).
		// A failed call is ErrUnavailable and the HTTP client retries.
		MaxRetries: -1,
		// One dial attempt per call, so an unreachable Redis costs a request
		// at most DialTimeout before its 503 (go-redis would try 5 times).
		DialerRetries: 1,
		// Honour the caller's deadline on the socket too, not only the
		// configured timeouts.
		ContextTimeoutEnabled: true,
		// Skip CLIENT SETINFO: older and managed servers reject it.
		DisableIdentity: true,
	})
	s := &Store{client: client, prefix: cfg.KeyPrefix, pinTTL: cfg.PinTTL, logger: logger}

	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.ReadTimeout)
	defer cancel()
	switch err := mapErr(pctx, "ping", client.Ping(pctx).Err()); {
	case err == nil:
	case errors.Is(err, locking.ErrUnavailable):
		logger.Warn("redis unreachable at startup; writes that need it fail until it answers",
			"addrs", cfg.Addrs, "err", err)
	default:
		client.Close()
		return nil, err
	}
	return s, nil
}

// Client is the connection pool, so that other shared state (the rate
// limits) uses the same connections and settings rather than a second pool.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// Close closes the connection pool.
func (s *Store) Close() error { return s.client.Close() }

// Now reads the Redis server's clock, the clock Pin stamps pins with. A GC
// compares pins against its mark start, so it should take the mark start
// from here rather than from its own clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	t, err := s.client.Time(ctx).Result()
	if err != nil {
		return time.Time{}, mapErr(ctx, "time", err)
	}
	return t, nil
}

// Key names; see the package comment for the layout.
func (s *Store) leaseKey(key string) string       { return s.prefix + "lease:{" + key + "}" }
func (s *Store) tokenKey(key string) string       { return s.leaseKey(key) + ":token" }
func (s *Store) pinKey(digest string) string      { return s.prefix + "pin:{" + digest + "}" }
func (s *Store) deletingKey(digest string) string { return s.pinKey(digest) + ":deleting" }
func (s *Store) sessionKey(id string) string {
	return s.prefix + "session:{" + locking.SessionLeaseKey(id) + "}"
}

// ms converts a ttl to whole milliseconds for PX, rounding up so that a
// sub-millisecond remainder never shortens a ttl (and 0 never means
// "no expiry").
func ms(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }

// leaseValue is what the lease key holds: both parts must match for a
// caller to count as the holder.
func leaseValue(l locking.Lease) string { return fmt.Sprintf("%s:%d", l.Holder, l.Token) }
