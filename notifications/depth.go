package notifications

import (
	"context"
	"fmt"
)

// Depth returns, per configured endpoint, how many events wait for
// delivery, in flight included: the figure the stratus_webhook_queue_depth
// gauge shows, read now rather than at a worker's last refresh.
//
// With Redis it is the XLEN of the endpoint's stream, shared by every
// replica: a delivered entry is acknowledged and deleted at once, so the
// stream holds exactly the undelivered ones. XINFO GROUPS lag would leave
// out the entries a replica has read but not delivered yet (those being
// retried against a down endpoint: the backlog that matters), and Redis
// reports no lag at all once entries were deleted from the middle of the
// stream, which every acknowledgement does. In-process it is this
// replica's queue: entries waiting plus those being delivered.
func (n *Notifier) Depth(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(n.cfg.Endpoints))
	for i := range n.cfg.Endpoints {
		name := n.cfg.Endpoints[i].Name
		d, _, err := n.q.stats(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("webhook queue depth of %s: %w", name, err)
		}
		out[name] = d
	}
	return out, nil
}
