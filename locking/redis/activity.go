package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking"
)

// The activity count is one hash, <prefix>activity, with a field per
// second of the Redis clock (every replica buckets on one clock, whatever
// their skew). One key keeps the scripts in one cluster slot; the add
// script drops fields older than ActivityKeep, so the hash holds at most a
// dozen fields however many requests the fleet serves.

// addActivityScript adds ARGV[1] to the current second's field and drops
// fields more than ARGV[2] seconds old. KEYS: the hash. Returns 1.
var addActivityScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local sec = tonumber(redis.call('TIME')[1])
local keep = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[1], string.format('%d', sec), ARGV[1])
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(f) < sec - keep then redis.call('HDEL', KEYS[1], f) end
end
redis.call('EXPIRE', KEYS[1], keep + 1)
return 1
`)

// recentActivityScript sums the current second's field and the ARGV[1]
// fields before it. KEYS: the hash. Read-only.
var recentActivityScript = goredis.NewScript(`
local sec = tonumber(redis.call('TIME')[1])
local sum = 0
for back = 0, tonumber(ARGV[1]) do
  local v = redis.call('HGET', KEYS[1], string.format('%d', sec - back))
  if v then sum = sum + tonumber(v) end
end
return sum
`)

var _ locking.Activity = (*Store)(nil)

func (s *Store) activityKey() string { return s.prefix + "activity" }

// AddActivity implements locking.Activity with one script call.
func (s *Store) AddActivity(ctx context.Context, n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: negative activity %d", locking.ErrInvalid, n)
	}
	keep := int64(locking.ActivityKeep / time.Second)
	err := addActivityScript.Run(ctx, s.client, []string{s.activityKey()}, n, keep).Err()
	return mapErr(ctx, "add activity", err)
}

// RecentActivity implements locking.Activity with one script call.
func (s *Store) RecentActivity(ctx context.Context, window time.Duration) (int64, error) {
	if err := locking.CheckActivityWindow(window); err != nil {
		return 0, err
	}
	n, err := recentActivityScript.Run(ctx, s.client, []string{s.activityKey()}, locking.ActivitySeconds(window)).Int64()
	if err != nil {
		return 0, mapErr(ctx, "recent activity", err)
	}
	return n, nil
}
