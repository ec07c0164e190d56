// Package ratelimit decides whether a request may proceed, and if not when
// to retry: a GCRA (generic cell rate algorithm) limiter per key, in Redis
// for a fleet of replicas (one atomic script, so every replica draws on
// the same allowance) or in process for a single one.
//
// GCRA keeps one timestamp per key, the theoretical arrival time (TAT) of
// the next request at the sustained rate. A request is allowed when TAT
// is at most Burst intervals ahead of now, and then advances TAT by one
// interval. A key whose TAT is in the past holds a full burst and carries
// no information, so its state can be dropped: Redis keys expire when TAT
// passes, and the in-process map forgets such keys first.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Rate is a sustained rate with a burst on top.
type Rate struct {
	// PerSecond is the sustained rate, requests per second.
	PerSecond float64
	// Burst is how many requests may come at once after a quiet period.
	Burst int
}

// ErrInvalidRate: a rate that cannot limit anything (not positive).
var ErrInvalidRate = errors.New("ratelimit: rate and burst must be positive")

// interval is the time one request costs at the sustained rate, at least
// one microsecond (the resolution of both implementations).
func (r Rate) interval() (time.Duration, error) {
	if !(r.PerSecond > 0) || math.IsInf(r.PerSecond, 0) || r.Burst < 1 {
		return 0, fmt.Errorf("%w (got %g/s, burst %d)", ErrInvalidRate, r.PerSecond, r.Burst)
	}
	iv := time.Duration(math.Round(float64(time.Second) / r.PerSecond / float64(time.Microsecond)))
	return max(iv, 1) * time.Microsecond, nil
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// RetryAfter is when the next request would be allowed; zero when
	// Allowed.
	RetryAfter time.Duration
	// Remaining is how many more requests would be allowed right now.
	Remaining int
}

// Limiter decides one request for key at rate. Implementations keep
// bounded state and drop a key's state once it holds a full burst again.
type Limiter interface {
	Allow(ctx context.Context, key string, rate Rate) (Decision, error)
}

// gcra is the decision shared by both implementations: tat is the stored
// arrival time (zero: none), and it returns the decision and the new tat
// to store (unchanged when denied).
func gcra(now, tat time.Time, interval time.Duration, burst int) (Decision, time.Time) {
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	allowAt := next.Add(-time.Duration(burst) * interval)
	if now.Before(allowAt) {
		return Decision{RetryAfter: allowAt.Sub(now)}, tat
	}
	return Decision{Allowed: true, Remaining: int(now.Sub(allowAt) / interval)}, next
}
