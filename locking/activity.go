package locking

import (
	"context"
	"fmt"
	"time"
)

// ActivityKeep is how far back an Activity store remembers counts: the
// longest window RecentActivity accepts. Counts older than it are dropped,
// so the state stays a handful of per-second buckets whatever the traffic.
const ActivityKeep = 10 * time.Second

// Activity is the fleet's shared count of requests served, in per-second
// buckets on the store's clock. Every replica adds what it served; garbage
// collection, usually on another replica, reads the sum to tell a busy
// registry from an idle one and yields to the busy one.
type Activity interface {
	// AddActivity adds n requests to the current second's bucket.
	AddActivity(ctx context.Context, n int64) error
	// RecentActivity is the sum of the buckets of the current second and
	// of the whole seconds within window before it, so it covers between
	// window and window+1s. window must be in (0, ActivityKeep].
	RecentActivity(ctx context.Context, window time.Duration) (int64, error)
}

// CheckActivityWindow rejects a window RecentActivity cannot answer.
func CheckActivityWindow(window time.Duration) error {
	if window <= 0 || window > ActivityKeep {
		return fmt.Errorf("%w: activity window %v is outside (0, %v]", ErrInvalid, window, ActivityKeep)
	}
	return nil
}

// ActivitySeconds is the number of whole seconds before the current one
// that a window covers: a window is rounded up to whole seconds, so a
// request just served is never outside it.
func ActivitySeconds(window time.Duration) int64 {
	return int64((window + time.Second - 1) / time.Second)
}
