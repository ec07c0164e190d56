package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking"
)

// tokenKeep is how long a key's token counter outlives its lease. Within it
// tokens increase even if the server clock steps back; after it the clock
// floor in acquireScript takes over.
const tokenKeep = time.Hour

// --- leases ---

// Acquire implements locking.Leases. Expires is computed from the local
// clock before the request is sent, so the holder believes its lease ends
// no later than Redis does.
func (s *Store) Acquire(ctx context.Context, key string, ttl time.Duration) (locking.Lease, error) {
	if err := errors.Join(locking.CheckKey("lease key", key), locking.CheckTTL(ttl)); err != nil {
		return locking.Lease{}, err
	}
	start := time.Now()
	holder := rand.Text()
	tok, err := acquireScript.Run(ctx, s.client,
		[]string{s.leaseKey(key), s.tokenKey(key)},
		holder, ms(ttl), ms(ttl+tokenKeep)).Int64()
	if errors.Is(err, goredis.Nil) {
		return locking.Lease{}, locking.ErrHeld
	}
	if err != nil {
		return locking.Lease{}, mapErr(ctx, "acquire", err)
	}
	return locking.Lease{Key: key, Token: uint64(tok), Holder: holder, Expires: start.Add(ttl)}, nil
}

// Renew implements locking.Leases.
func (s *Store) Renew(ctx context.Context, l locking.Lease, ttl time.Duration) (locking.Lease, error) {
	if err := locking.CheckTTL(ttl); err != nil {
		return locking.Lease{}, err
	}
	start := time.Now()
	ok, err := renewScript.Run(ctx, s.client, []string{s.leaseKey(l.Key)}, leaseValue(l), ms(ttl)).Bool()
	if err != nil {
		return locking.Lease{}, mapErr(ctx, "renew", err)
	}
	if !ok {
		return locking.Lease{}, locking.ErrLost
	}
	l.Expires = start.Add(ttl)
	return l, nil
}

// Release implements locking.Leases.
func (s *Store) Release(ctx context.Context, l locking.Lease) error {
	ok, err := releaseScript.Run(ctx, s.client, []string{s.leaseKey(l.Key)}, leaseValue(l)).Bool()
	if err != nil {
		return mapErr(ctx, "release", err)
	}
	if !ok {
		return locking.ErrLost
	}
	return nil
}

// --- pins ---

// Pin implements locking.Pins.
func (s *Store) Pin(ctx context.Context, digest string) error {
	if err := locking.CheckKey("digest", digest); err != nil {
		return err
	}
	ok, err := pinScript.Run(ctx, s.client,
		[]string{s.pinKey(digest), s.deletingKey(digest)}, ms(s.pinTTL)).Bool()
	if err != nil {
		return mapErr(ctx, "pin", err)
	}
	if !ok {
		return locking.ErrDeleting
	}
	return nil
}

// PinAll implements locking.Pins: one pin script per key, pipelined, so
// the group costs one round trip. The keys of different digests live in
// different cluster slots, so they cannot share one script; a pipeline is
// split by node in a cluster and stays one round trip per node.
func (s *Store) PinAll(ctx context.Context, keys ...string) error {
	if err := locking.CheckKeys("digest", keys); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	cmds, err := s.pinPipeline(ctx, keys, false)
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// A restarted server has an empty script cache: send the source.
		cmds, err = s.pinPipeline(ctx, keys, true)
	}
	if err != nil {
		return mapErr(ctx, "pin", err)
	}
	var refused []string
	for i, c := range cmds {
		ok, err := c.Bool()
		if err != nil {
			return mapErr(ctx, "pin", err)
		}
		if !ok {
			refused = append(refused, keys[i])
		}
	}
	if refused != nil {
		return &locking.RefusedError{Keys: refused}
	}
	return nil
}

// pinPipeline sends pinScript for each key in one pipeline, by SHA1 or,
// with source, as the script itself.
func (s *Store) pinPipeline(ctx context.Context, keys []string, source bool) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			ks := []string{s.pinKey(k), s.deletingKey(k)}
			if source {
				cmds[i] = pinScript.Eval(ctx, p, ks, ms(s.pinTTL))
			} else {
				cmds[i] = pinScript.EvalSha(ctx, p, ks, ms(s.pinTTL))
			}
		}
		return nil
	})
	return cmds, err
}

// Claim implements locking.Pins. notPinnedSince is compared with pins
// stamped by the Redis clock, so it should derive from Now. A digest that
// is claimed already is not claimed again (false): its claimer may still
// be deleting it, and the claim's ttl frees it if that claimer died.
func (s *Store) Claim(ctx context.Context, digest string, notPinnedSince time.Time, ttl time.Duration) (bool, error) {
	if err := errors.Join(locking.CheckKey("digest", digest), locking.CheckTTL(ttl)); err != nil {
		return false, err
	}
	// UnixMicro truncates, moving notPinnedSince earlier: a pin in the
	// same microsecond still refuses the claim.
	ok, err := claimScript.Run(ctx, s.client,
		[]string{s.pinKey(digest), s.deletingKey(digest)},
		notPinnedSince.UnixMicro(), ms(ttl)).Bool()
	if err != nil {
		return false, mapErr(ctx, "claim", err)
	}
	return ok, nil
}

// Unclaim implements locking.Pins.
func (s *Store) Unclaim(ctx context.Context, digest string) error {
	if err := locking.CheckKey("digest", digest); err != nil {
		return err
	}
	return mapErr(ctx, "unclaim", s.client.Del(ctx, s.deletingKey(digest)).Err())
}

// ClaimMany implements locking.Pins: one pipeline of the claim script, so
// each claim stays atomic against its digest's pins and a page of claims
// costs one round trip (per shard, on a cluster) instead of one each.
func (s *Store) ClaimMany(ctx context.Context, digests []string, notPinnedSince time.Time, ttl time.Duration) ([]bool, error) {
	if err := errors.Join(locking.CheckKeys("digest", digests), locking.CheckTTL(ttl)); err != nil {
		return nil, err
	}
	since, ttlMs := notPinnedSince.UnixMicro(), ms(ttl)
	keys := func(d string) []string { return []string{s.pinKey(d), s.deletingKey(d)} }
	cmds, err := s.pipeScript(ctx, claimScript, len(digests), func(p goredis.Pipeliner, i int, sha bool) *goredis.Cmd {
		if sha {
			return claimScript.EvalSha(ctx, p, keys(digests[i]), since, ttlMs)
		}
		return claimScript.Eval(ctx, p, keys(digests[i]), since, ttlMs)
	})
	if err != nil {
		return nil, mapErr(ctx, "claim", err)
	}
	claimed := make([]bool, len(digests))
	for i, c := range cmds {
		if claimed[i], err = c.Bool(); err != nil {
			return nil, mapErr(ctx, "claim", err)
		}
	}
	return claimed, nil
}

// pipeScript runs n calls of script in one pipeline (call builds call i,
// by SHA or with the body). Calls the server refused with NOSCRIPT (a
// restarted or flushed Redis) had no effect and are sent again with the
// body, so the script cache costs nothing in the common case.
func (s *Store) pipeScript(ctx context.Context, script *goredis.Script, n int, call func(p goredis.Pipeliner, i int, sha bool) *goredis.Cmd) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, n)
	p := s.client.Pipeline()
	for i := range n {
		cmds[i] = call(p, i, true)
	}
	if _, err := p.Exec(ctx); err != nil && !hasOnlyNoScript(cmds) {
		return nil, err
	}
	var again []int
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return cmds, nil
	}
	p = s.client.Pipeline()
	for _, i := range again {
		cmds[i] = call(p, i, false)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, err
	}
	return cmds, nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// hasOnlyNoScript reports whether every failed call failed with NOSCRIPT.
func hasOnlyNoScript(cmds []*goredis.Cmd) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !isNoScript(err) && !errors.Is(err, goredis.Nil) {
			return false
		}
	}
	return true
}

// UnclaimMany implements locking.Pins with one pipeline of DELs (one key
// each, so that a cluster routes every key to its own shard).
func (s *Store) UnclaimMany(ctx context.Context, digests []string) error {
	if err := locking.CheckKeys("digest", digests); err != nil {
		return err
	}
	p := s.client.Pipeline()
	for _, d := range digests {
		p.Del(ctx, s.deletingKey(d))
	}
	_, err := p.Exec(ctx)
	return mapErr(ctx, "unclaim", err)
}

// --- sessions ---

// Create implements locking.Sessions.
func (s *Store) Create(ctx context.Context, id string, rec []byte, ttl time.Duration) error {
	if err := errors.Join(locking.CheckKey("session id", id), locking.CheckTTL(ttl)); err != nil {
		return err
	}
	ok, err := s.client.SetNX(ctx, s.sessionKey(id), rec, time.Duration(ms(ttl))*time.Millisecond).Result()
	if err != nil {
		return mapErr(ctx, "create", err)
	}
	if !ok {
		return locking.ErrExists
	}
	return nil
}

// Get implements locking.Sessions.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	rec, err := s.client.Get(ctx, s.sessionKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, locking.ErrNotFound
	}
	if err != nil {
		return nil, mapErr(ctx, "get", err)
	}
	return rec, nil
}

// Update implements locking.Sessions: one script checks the lease and
// writes, so a writer whose lease lapsed between its check and its write
// cannot overwrite its successor.
func (s *Store) Update(ctx context.Context, l locking.Lease, id string, rec []byte, ttl time.Duration) error {
	if err := errors.Join(locking.CheckKey("session id", id), locking.CheckTTL(ttl)); err != nil {
		return err
	}
	if l.Key != locking.SessionLeaseKey(id) {
		return locking.ErrLost
	}
	res, err := updateScript.Run(ctx, s.client,
		[]string{s.leaseKey(l.Key), s.sessionKey(id)},
		leaseValue(l), rec, ms(ttl)).Int64()
	if err != nil {
		return mapErr(ctx, "update", err)
	}
	switch res {
	case 1:
		return nil
	case 0:
		return locking.ErrNotFound
	default:
		return locking.ErrLost
	}
}

// Delete implements locking.Sessions.
func (s *Store) Delete(ctx context.Context, id string) error {
	return mapErr(ctx, "delete", s.client.Del(ctx, s.sessionKey(id)).Err())
}
