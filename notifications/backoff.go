package notifications

import "time"

// backoff is the wait before retry number attempt (0 for the first retry):
// min doubled per attempt, capped at max, with "equal jitter" (a uniform
// pick in [d/2, d]), so replicas retrying one dead endpoint spread out but
// never retry sooner than half the nominal delay. rnd returns [0, 1).
func backoff(attempt int, min, max time.Duration, rnd func() float64) time.Duration {
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}
