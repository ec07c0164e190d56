package notifications

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const lo, hi = time.Second, time.Minute
	tests := []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{0, 0, 500 * time.Millisecond},
		{0, 0.999999, time.Second},
		{1, 0, time.Second},
		{3, 0, 4 * time.Second},
		{3, 0.5, 6 * time.Second},
		{5, 0, 16 * time.Second},
		{6, 0, 30 * time.Second}, // 64s capped at the max
		{6, 0.999999, hi},
		{1000, 0, 30 * time.Second}, // no overflow
	}
	for _, tt := range tests {
		got := backoff(tt.attempt, lo, hi, func() float64 { return tt.rnd })
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("backoff(%d, rnd %v) = %v, want %v", tt.attempt, tt.rnd, got, tt.want)
		}
	}
}
