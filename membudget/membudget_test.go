package membudget

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type countObs struct{ reserved, refused atomic.Int64 }

func (c *countObs) Reserved(n int64) { c.reserved.Add(n) }
func (c *countObs) Refused()         { c.refused.Add(1) }

func TestAcquire(t *testing.T) {
	tests := []struct {
		name     string
		size     int64
		held     int64 // reserved by another request first
		freeIn   time.Duration
		want     int64
		wait     time.Duration
		wantErr  error
		cancelIn time.Duration
	}{
		{name: "fits", size: 100, held: 40, want: 60, wait: time.Second},
		{name: "zero", size: 100, held: 100, want: 0, wait: 0},
		{name: "waits for a release", size: 100, held: 80, freeIn: 20 * time.Millisecond, want: 50, wait: 5 * time.Second},
		{name: "times out", size: 100, held: 80, want: 50, wait: 30 * time.Millisecond, wantErr: ErrExhausted},
		{name: "larger than the budget", size: 100, want: 101, wait: time.Second, wantErr: ErrExhausted},
		{name: "caller gives up", size: 100, held: 100, want: 1, wait: 5 * time.Second, cancelIn: 20 * time.Millisecond, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &countObs{}
			b, err := New(tt.size, tt.wait, obs)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancelIn > 0 {
				time.AfterFunc(tt.cancelIn, cancel)
			}
			other, err := b.Acquire(ctx, tt.held)
			if err != nil {
				t.Fatal(err)
			}
			if tt.freeIn > 0 {
				time.AfterFunc(tt.freeIn, other)
			}
			release, err := b.Acquire(ctx, tt.want)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Acquire(%d) = %v; want %v", tt.want, err, tt.wantErr)
			}
			if err == nil {
				release()
				release() // a second call is a no-op
			}
			other()
			if got := obs.reserved.Load(); got != 0 {
				t.Errorf("%d bytes still reserved after every release", got)
			}
			wantRefused := int64(0)
			if errors.Is(tt.wantErr, ErrExhausted) {
				wantRefused = 1
			}
			if got := obs.refused.Load(); got != wantRefused {
				t.Errorf("%d refusals counted; want %d", got, wantRefused)
			}
			// Everything is free again.
			if r, err := b.Acquire(t.Context(), tt.size); err != nil {
				t.Errorf("the whole budget after the releases: %v", err)
			} else {
				r()
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	for _, tt := range []struct {
		size int64
		wait time.Duration
	}{{0, time.Second}, {-1, time.Second}, {10, -time.Second}} {
		if _, err := New(tt.size, tt.wait, nil); err == nil {
			t.Errorf("New(%d, %s) accepted", tt.size, tt.wait)
		}
	}
}
