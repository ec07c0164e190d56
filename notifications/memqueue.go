package notifications

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// memQueue is the in-process queue used without Redis: the same delivery
// loop, bounded per endpoint, lost when the process exits.
type memQueue struct {
	max int
	mu  sync.Mutex
	// wake is closed and replaced whenever an entry is added or released.
	wake    chan struct{}
	pending map[string][]*entry // per endpoint, oldest first
	flying  map[string]int      // per endpoint, entries handed out
	seq     int64
	now     func() time.Time
}

func newMemQueue(max int64, now func() time.Time) *memQueue {
	return &memQueue{max: int(max), wake: make(chan struct{}), pending: map[string][]*entry{}, flying: map[string]int{}, now: now}
}

func (q *memQueue) add(_ context.Context, items []item) ([]int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dropped := make([]int64, len(items))
	for i, it := range items {
		q.seq++
		p := append(q.pending[it.endpoint], &entry{id: strconv.FormatInt(q.seq, 10), data: it.data, enqueued: q.now()})
		if over := len(p) + q.flying[it.endpoint] - q.max; over > 0 {
			over = min(over, len(p))
			p = append(p[:0:0], p[over:]...)
			dropped[i] = int64(over)
		}
		q.pending[it.endpoint] = p
	}
	q.signal()
	return dropped, nil
}

// signal wakes every waiting worker; the caller holds mu.
func (q *memQueue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

func (q *memQueue) next(ctx context.Context, endpoint string) (*entry, error) {
	timer := time.NewTimer(pollWait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if p := q.pending[endpoint]; len(p) > 0 {
			e := p[0]
			p[0] = nil
			q.pending[endpoint] = p[1:]
			q.flying[endpoint]++
			q.mu.Unlock()
			return e, nil
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil
		case <-timer.C:
			return nil, nil
		case <-wake:
		}
	}
}

func (q *memQueue) ack(_ context.Context, endpoint string, _ *entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flying[endpoint]--
	return nil
}

func (q *memQueue) touch(context.Context, string, *entry) (bool, error) { return true, nil }

func (q *memQueue) release(_ context.Context, endpoint string, e *entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flying[endpoint]--
	q.pending[endpoint] = append([]*entry{e}, q.pending[endpoint]...)
	q.signal()
	return nil
}

func (q *memQueue) stats(_ context.Context, endpoint string) (int64, time.Time, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending[endpoint]
	var oldest time.Time
	if len(p) > 0 {
		oldest = p[0].enqueued
	}
	return int64(len(p) + q.flying[endpoint]), oldest, nil
}

func (q *memQueue) close(context.Context) error { return nil }
