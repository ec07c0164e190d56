package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts. Like compiled regexps they are immutable after
// construction (a script is its source and its SHA1); Run sends EVALSHA and
// falls back to EVAL after a server restart has emptied the script cache.
//
// Scripts that read TIME and then write call redis.replicate_commands
// first: Redis 5 and 6 require it for scripts with non-deterministic
// commands (7 always replicates effects and keeps the call as a no-op).
//
// Times are integers of microseconds since the epoch. They fit a Lua
// double exactly (2^53 µs is the year 2255), and are written back with
// %.0f because tostring would use exponent notation.

// acquireScript takes a free lease.
// KEYS: lease, token counter. ARGV: holder, ttl ms, counter ttl ms.
// Returns the token, or nil if the lease is held.
//
// The token is max(last token + 1, server time in µs). The counter alone
// makes tokens strictly increasing while it lives; the time floor keeps
// them increasing after it expired or Redis lost its data in a restart, so
// the counter can expire instead of keeping a key per upload ID forever.
var acquireScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('TIME')
local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tok = redis.call('INCR', KEYS[2])
if tok < floor then
  tok = floor
  redis.call('SET', KEYS[2], string.format('%.0f', tok))
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%.0f', tok), 'PX', ARGV[2])
return tok
`)

// renewScript extends the lease if the caller still holds it.
// KEYS: lease. ARGV: "holder:token", ttl ms. Returns 1 if renewed, else 0.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`)

// releaseScript deletes the lease if the caller still holds it.
// KEYS: lease. ARGV: "holder:token". Returns 1 if released, else 0.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

// pinScript records a pin unless the digest is claimed.
// KEYS: pin, deleting. ARGV: pin ttl ms. Returns 1 if pinned, 0 if claimed.
// The stored time never moves backwards, even if the server clock does.
var pinScript = goredis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last and last > now then now = last end
redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX', ARGV[1])
return 1
`)

// claimScript marks the digest as being deleted unless it is claimed
// already or was pinned at or after notPinnedSince.
// KEYS: pin, deleting. ARGV: notPinnedSince µs, ttl ms.
// Returns 1 if claimed, else 0.
var claimScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
`)

// updateScript replaces a session record if the caller holds its lease.
// KEYS: lease, session. ARGV: "holder:token", record, ttl ms.
// Returns 1 if updated, 0 if the record is gone, -1 if the lease is not
// the caller's.
var updateScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('SET', KEYS[2], ARGV[2], 'XX', 'PX', ARGV[3]) then return 1 end
return 0
`)
