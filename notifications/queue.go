package notifications

import (
	"context"
	"time"
)

// queue holds the undelivered entries of every endpoint. Each endpoint
// has a queue of its own, so a dead endpoint's backlog never delays
// another's deliveries.
type queue interface {
	// add enqueues one entry per item and reports, per item, how many old
	// entries the length bound pushed out.
	add(ctx context.Context, items []item) ([]int64, error)
	// next returns the next entry for this replica to deliver, waiting up
	// to about pollWait; nil when there is none yet.
	next(ctx context.Context, endpoint string) (*entry, error)
	// ack removes a delivered (or dropped) entry.
	ack(ctx context.Context, endpoint string, e *entry) error
	// touch tells the queue the entry is still being worked on, so that no
	// other replica claims it; false when another replica took it over.
	touch(ctx context.Context, endpoint string, e *entry) (bool, error)
	// release hands an entry back for any replica to deliver at once.
	release(ctx context.Context, endpoint string, e *entry) error
	// stats reports the endpoint's undelivered entries and the enqueue
	// time of the oldest (zero when there is none).
	stats(ctx context.Context, endpoint string) (int64, time.Time, error)
	// close releases what the queue holds for this replica.
	close(ctx context.Context) error
}

type item struct {
	endpoint string
	data     []byte
}

type entry struct {
	id       string
	data     []byte
	enqueued time.Time
}

// pollWait bounds how long next blocks, so that a worker notices shutdown
// and claimable entries of dead replicas promptly.
const pollWait = 2 * time.Second
