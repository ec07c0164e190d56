package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// activitySlots holds every second RecentActivity may read (the current
// one and ActivityKeep before it), so a ring of them never overwrites a
// bucket still in reach.
const activitySlots = int(locking.ActivityKeep/time.Second) + 1

// activityBucket is one second's count; sec tells a live slot from one
// left over from an earlier turn of the ring.
type activityBucket struct {
	sec int64
	n   int64
}

var _ locking.Activity = (*Store)(nil)

// AddActivity implements locking.Activity.
func (s *Store) AddActivity(ctx context.Context, n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: negative activity %d", locking.ErrInvalid, n)
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	sec := now.Unix()
	b := &s.activity[slot(sec)]
	if b.sec != sec {
		*b = activityBucket{sec: sec}
	}
	b.n += n
	return nil
}

// RecentActivity implements locking.Activity.
func (s *Store) RecentActivity(ctx context.Context, window time.Duration) (int64, error) {
	if err := locking.CheckActivityWindow(window); err != nil {
		return 0, err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	sec := now.Unix()
	var sum int64
	for back := int64(0); back <= locking.ActivitySeconds(window); back++ {
		if b := s.activity[slot(sec-back)]; b.sec == sec-back {
			sum += b.n
		}
	}
	return sum, nil
}

func slot(sec int64) int {
	// sec is positive for any clock after 1970; the modulo keeps a
	// negative test clock in range too.
	i := int(sec % int64(activitySlots))
	if i < 0 {
		i += activitySlots
	}
	return i
}
