package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking"
)

// transientReplies are server error replies that mean "not now" rather
// than "never": the server is loading, failing over, resharding, or out of
// memory until keys expire.
var transientReplies = []string{
	"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN",
	"BUSY", "NOREPLICAS", "OOM",
}

// mapErr is the one place that knows go-redis's error shapes. Callers see
// locking's sentinels, with the go-redis error kept in the chain:
//   - redis.Nil becomes ErrNotFound;
//   - a cancelled context stays context.Canceled (the client went away,
//     nothing is wrong with Redis);
//   - anything that is not a reply from the server (dial failures, EOF,
//     timeouts, a closed client) and the transient replies above become
//     ErrUnavailable;
//   - other replies (auth, script errors) are returned as they are.
//
// ctx is the caller's: go-redis turns its deadline into a socket deadline,
// so an expired or cancelled ctx surfaces as a plain i/o error, and only
// ctx itself tells which it was.
func mapErr(ctx context.Context, op string, err error) error {
	ctxErr := contextErr(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return fmt.Errorf("redis %s: %w", op, locking.ErrNotFound)
	case errors.Is(ctxErr, context.Canceled):
		return fmt.Errorf("redis %s: %w: %w", op, ctxErr, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("redis %s: %w", op, err)
	case ctxErr != nil && !errors.Is(err, ctxErr):
		return fmt.Errorf("redis %s: %w: %w: %w", op, locking.ErrUnavailable, ctxErr, err)
	case unavailable(err):
		return fmt.Errorf("redis %s: %w: %w", op, locking.ErrUnavailable, err)
	default:
		return fmt.Errorf("redis %s: %w", op, err)
	}
}

// contextErr is ctx.Err(), except that a deadline counts as exceeded from
// the instant it passes: the socket deadline go-redis derives from it can
// fire before the context's own timer has marked it done.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func unavailable(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return true
	}
	for _, p := range transientReplies {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}
