package notifications

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisQueue keeps one Redis Stream per endpoint,
//
//	<prefix>events:{<endpoint>}
//
// read by the consumer group "stratus", in which every replica is a
// consumer named by its instance id. An entry is one (event, endpoint)
// pair. A delivered entry is acknowledged and deleted, so the stream holds
// exactly the undelivered entries; an entry a replica read stays in the
// group's pending list until then, and an entry idle there for claimIdle
// (its replica died) is claimed by another replica with XAUTOCLAIM.
type redisQueue struct {
	client    goredis.UniversalClient
	prefix    string
	consumer  string
	maxLen    int64
	claimIdle time.Duration

	mu sync.Mutex
	// per endpoint: whether the group exists, where XAUTOCLAIM goes on,
	// and when it and the consumer reaper last ran.
	state map[string]*streamState
}

type streamState struct {
	group     bool
	claimFrom string
	claimedAt time.Time
	reapedAt  time.Time
}

const (
	groupName = "stratus"
	// claimEvery bounds how often a worker scans for entries of dead
	// replicas.
	claimEvery = time.Second
	// reapEvery and reapIdle: consumers (replicas that are gone) with
	// nothing pending and idle for reapIdle are removed from the group.
	reapEvery = 10 * time.Minute
	reapIdle  = time.Hour
)

// addScript appends one entry under an exact length bound and returns how
// many entries the bound removed, so that overflow is counted, not silent.
// One key per call: it runs on any cluster node.
var addScript = goredis.NewScript(`
local n = redis.call('XLEN', KEYS[1])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[2])
local over = n + 1 - tonumber(ARGV[1])
if over < 0 then over = 0 end
return over
`)

func newRedisQueue(client goredis.UniversalClient, prefix, consumer string, maxLen int64, claimIdle time.Duration) *redisQueue {
	return &redisQueue{client: client, prefix: prefix, consumer: consumer, maxLen: maxLen, claimIdle: claimIdle, state: map[string]*streamState{}}
}

func (q *redisQueue) key(endpoint string) string { return q.prefix + "events:{" + endpoint + "}" }

func (q *redisQueue) add(ctx context.Context, items []item) ([]int64, error) {
	pipe := q.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(items))
	for i, it := range items {
		cmds[i] = addScript.Eval(ctx, pipe, []string{q.key(it.endpoint)}, q.maxLen, it.data)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis xadd: %w", err)
	}
	dropped := make([]int64, len(items))
	for i, c := range cmds {
		dropped[i], _ = c.Int64()
	}
	return dropped, nil
}

func (q *redisQueue) stream(endpoint string) *streamState {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.state[endpoint]
	if s == nil {
		s = &streamState{claimFrom: "0-0"}
		q.state[endpoint] = s
	}
	return s
}

// ensureGroup creates the stream's group reading from the start, so that
// entries added before any replica ran are delivered too.
func (q *redisQueue) ensureGroup(ctx context.Context, endpoint string, s *streamState) error {
	if s.group {
		return nil
	}
	err := q.client.XGroupCreateMkStream(ctx, q.key(endpoint), groupName, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis xgroup create: %w", err)
	}
	s.group = true
	return nil
}

// next claims an entry a dead replica left pending, else reads a new one.
// Only the endpoint's one worker of this replica calls it, so the stream
// state needs no lock beyond its lookup.
func (q *redisQueue) next(ctx context.Context, endpoint string) (*entry, error) {
	s := q.stream(endpoint)
	if err := q.ensureGroup(ctx, endpoint, s); err != nil {
		return nil, err
	}
	if time.Since(s.claimedAt) >= claimEvery {
		s.claimedAt = time.Now()
		if e, err := q.claim(ctx, endpoint, s); e != nil || err != nil {
			return e, q.checkGroup(s, err)
		}
		q.reap(ctx, endpoint, s)
	}
	res, err := q.client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: groupName, Consumer: q.consumer, Streams: []string{q.key(endpoint), ">"}, Count: 1, Block: pollWait,
	}).Result()
	if errors.Is(err, goredis.Nil) || ctx.Err() != nil {
		return nil, nil
	}
	if err != nil {
		return nil, q.checkGroup(s, fmt.Errorf("redis xreadgroup: %w", err))
	}
	for _, st := range res {
		for _, m := range st.Messages {
			return toEntry(m), nil
		}
	}
	return nil, nil
}

// checkGroup forgets the group after NOGROUP (Redis lost its data), so the
// next call creates it again.
func (q *redisQueue) checkGroup(s *streamState, err error) error {
	if err != nil && strings.Contains(err.Error(), "NOGROUP") {
		s.group = false
	}
	return err
}

func (q *redisQueue) claim(ctx context.Context, endpoint string, s *streamState) (*entry, error) {
	msgs, from, err := q.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: q.key(endpoint), Group: groupName, Consumer: q.consumer,
		MinIdle: q.claimIdle, Start: s.claimFrom, Count: 1,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis xautoclaim: %w", err)
	}
	s.claimFrom = from
	if len(msgs) == 0 {
		return nil, nil
	}
	return toEntry(msgs[0]), nil
}

// reap removes consumers of replicas that are gone and hold nothing. A
// failure only delays it: reaping is housekeeping.
func (q *redisQueue) reap(ctx context.Context, endpoint string, s *streamState) {
	if time.Since(s.reapedAt) < reapEvery {
		return
	}
	s.reapedAt = time.Now()
	cs, err := q.client.XInfoConsumers(ctx, q.key(endpoint), groupName).Result()
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name != q.consumer && c.Pending == 0 && c.Idle > reapIdle {
			q.client.XGroupDelConsumer(ctx, q.key(endpoint), groupName, c.Name)
		}
	}
}

// toEntry reads a stream message; its id's first part is the enqueue
// time in milliseconds (Redis assigns it).
func toEntry(m goredis.XMessage) *entry {
	e := &entry{id: m.ID}
	if ms, _, ok := strings.Cut(m.ID, "-"); ok {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			e.enqueued = time.UnixMilli(n)
		}
	}
	if v, ok := m.Values["e"].(string); ok {
		e.data = []byte(v)
	}
	return e
}

func (q *redisQueue) ack(ctx context.Context, endpoint string, e *entry) error {
	pipe := q.client.TxPipeline()
	pipe.XAck(ctx, q.key(endpoint), groupName, e.id)
	pipe.XDel(ctx, q.key(endpoint), e.id)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis xack: %w", err)
	}
	return nil
}

// touch claims the entry for this consumer again, which resets its idle
// time; an empty answer means it is no longer pending (deleted by another
// replica that claimed and delivered it, or trimmed).
func (q *redisQueue) touch(ctx context.Context, endpoint string, e *entry) (bool, error) {
	ids, err := q.client.XClaimJustID(ctx, &goredis.XClaimArgs{
		Stream: q.key(endpoint), Group: groupName, Consumer: q.consumer, Messages: []string{e.id},
	}).Result()
	if err != nil {
		return false, fmt.Errorf("redis xclaim: %w", err)
	}
	return len(ids) == 1, nil
}

// release marks the entry idle for claimIdle already (XCLAIM ... IDLE),
// so that the next XAUTOCLAIM of any replica takes it at once. It stays
// pending: nothing is lost if this replica exits right after.
func (q *redisQueue) release(ctx context.Context, endpoint string, e *entry) error {
	err := q.client.Do(ctx, "XCLAIM", q.key(endpoint), groupName, q.consumer, 0, e.id,
		"IDLE", q.claimIdle.Milliseconds(), "JUSTID").Err()
	if err != nil {
		return fmt.Errorf("redis xclaim idle: %w", err)
	}
	return nil
}

func (q *redisQueue) stats(ctx context.Context, endpoint string) (int64, time.Time, error) {
	pipe := q.client.Pipeline()
	n := pipe.XLen(ctx, q.key(endpoint))
	first := pipe.XRangeN(ctx, q.key(endpoint), "-", "+", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, time.Time{}, fmt.Errorf("redis xlen: %w", err)
	}
	var oldest time.Time
	if ms := first.Val(); len(ms) > 0 {
		oldest = toEntry(ms[0]).enqueued
	}
	return n.Val(), oldest, nil
}

// close leaves this consumer in the group: its pending entries, if any,
// were released and are claimed by the others; the reaper removes it.
func (q *redisQueue) close(context.Context) error { return nil }
