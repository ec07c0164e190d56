package ratelimit

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// gcraScript is one GCRA decision, atomic on the server and timed by the
// server's clock, so replicas with skewed clocks share one allowance.
// KEYS: the key's TAT. ARGV: interval µs, burst.
// Returns {allowed 0/1, retry after µs, remaining}.
//
// The TAT key expires when TAT passes: from then on it would hold a full
// burst, the same as no key, so Redis keeps at most one key per client
// that has been active within the last Burst intervals.
var gcraScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
local allow_at = nxt - burst * interval
if now < allow_at then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000))
return {1, 0, math.floor((now - allow_at) / interval)}
`)

// Redis is the Limiter a fleet shares.
type Redis struct {
	client goredis.Scripter
	prefix string
}

var _ Limiter = (*Redis)(nil)

// NewRedis keeps its keys under prefix (the redis.key_prefix of the other
// shared state, so one Redis can serve several registries): each is
// "<prefix>ratelimit:{<key>}".
func NewRedis(client goredis.Scripter, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Key is the Redis key holding key's state.
func (l *Redis) Key(key string) string { return l.prefix + "ratelimit:{" + key + "}" }

// Allow implements Limiter. Script.Run sends EVALSHA and falls back to
// EVAL when the server's script cache is empty (NOSCRIPT, after a restart).
func (l *Redis) Allow(ctx context.Context, key string, rate Rate) (Decision, error) {
	interval, err := rate.interval()
	if err != nil {
		return Decision{}, err
	}
	res, err := gcraScript.Run(ctx, l.client, []string{l.Key(key)}, interval.Microseconds(), rate.Burst).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("ratelimit: redis: script answered %v", res)
	}
	return Decision{
		Allowed:    res[0] == 1,
		RetryAfter: time.Duration(res[1]) * time.Microsecond,
		Remaining:  int(res[2]),
	}, nil
}
