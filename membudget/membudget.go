// Package membudget bounds the memory a process spends on large buffers
// (upload part buffers, manifest bodies, listing pages): every such
// allocation reserves its size from one process-wide Budget first, so that
// many concurrent requests wait, and then fail cleanly, instead of taking
// the process past its container limit.
package membudget

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/stratus-registry/stratus/storage"
)

// ErrExhausted is what Acquire returns when the budget stayed full for the
// whole wait. It is storage's sentinel, so that the registry and drivers
// recognise it without importing this package.
var ErrExhausted = storage.ErrBudgetExhausted

// Budget is a weighted semaphore over bytes. It is safe for concurrent use.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
	obs  Observer
}

var _ storage.BufferBudget = (*Budget)(nil)

// Observer is told about every reservation, for metrics; nil means none.
type Observer interface {
	// Reserved is called with +n on a reservation and -n on its release.
	Reserved(n int64)
	// Refused is called for a request that waited wait and got nothing.
	Refused()
}

// New returns a budget of size bytes whose Acquire waits at most wait.
func New(size int64, wait time.Duration, obs Observer) (*Budget, error) {
	if size <= 0 {
		return nil, fmt.Errorf("membudget: size %d must be positive", size)
	}
	if wait < 0 {
		return nil, fmt.Errorf("membudget: wait %s must not be negative", wait)
	}
	return &Budget{sem: semaphore.NewWeighted(size), size: size, wait: wait, obs: obs}, nil
}

// Size is the budget in bytes.
func (b *Budget) Size() int64 { return b.size }

// Acquire reserves n bytes, waiting up to the budget's wait while others
// hold them. release gives them back and must be called exactly once. A
// request larger than the whole budget can never be served: it fails at
// once. The error wraps ErrExhausted, or is ctx's when the caller gave up
// first.
func (b *Budget) Acquire(ctx context.Context, n int64) (release func(), err error) {
	if n <= 0 {
		return func() {}, nil
	}
	if n > b.size {
		b.refused()
		return nil, fmt.Errorf("%w: %d bytes requested, the budget is %d", ErrExhausted, n, b.size)
	}
	if !b.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		defer cancel()
		if err := b.sem.Acquire(wctx, n); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			b.refused()
			return nil, fmt.Errorf("%w: %d bytes not free within %s", ErrExhausted, n, b.wait)
		}
	}
	if b.obs != nil {
		b.obs.Reserved(n)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if b.obs != nil {
				b.obs.Reserved(-n)
			}
			b.sem.Release(n)
		})
	}, nil
}

func (b *Budget) refused() {
	if b.obs != nil {
		b.obs.Refused()
	}
}
