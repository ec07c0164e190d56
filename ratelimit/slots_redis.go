package ratelimit

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// acquireSlotScript takes a slot: a sorted set of holders scored by their
// expiry (ms, server clock). Expired holders are removed first, so the
// count heals from holders that never released. The set expires with its
// last slot, so an idle key leaves nothing behind.
// KEYS: the set. ARGV: holder, limit, ttl ms.
// Returns {allowed 0/1, retry after ms, remaining}.
var acquireSlotScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if n >= limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2]) - now, 0}
  end
  n = n + 1
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, 0, limit - n}
`)

// slotsClient is what RedisSlots needs of a go-redis client.
type slotsClient interface {
	goredis.Scripter
	ZRem(ctx context.Context, key string, members ...any) *goredis.IntCmd
}

// RedisSlots are the Slots a fleet shares.
type RedisSlots struct {
	client slotsClient
	prefix string
}

var _ Slots = (*RedisSlots)(nil)

// NewRedisSlots keeps each key's holders in "<prefix>slots:{<key>}".
func NewRedisSlots(client slotsClient, prefix string) *RedisSlots {
	return &RedisSlots{client: client, prefix: prefix}
}

// Key is the Redis key holding key's slots.
func (s *RedisSlots) Key(key string) string { return s.prefix + "slots:{" + key + "}" }

// Acquire implements Slots.
func (s *RedisSlots) Acquire(ctx context.Context, key, holder string, limit int, ttl time.Duration) (Decision, error) {
	if err := checkSlots(limit, ttl); err != nil {
		return Decision{}, err
	}
	ttlMS := max(ttl.Milliseconds(), 1)
	res, err := acquireSlotScript.Run(ctx, s.client, []string{s.Key(key)}, holder, limit, ttlMS).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("ratelimit: redis: script answered %v", res)
	}
	return Decision{Allowed: res[0] == 1, RetryAfter: time.Duration(res[1]) * time.Millisecond, Remaining: int(res[2])}, nil
}

// Release implements Slots.
func (s *RedisSlots) Release(ctx context.Context, key, holder string) error {
	if err := s.client.ZRem(ctx, s.Key(key), holder).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}
