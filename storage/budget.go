package storage

import "context"

// BufferBudget reserves the bytes of a large buffer before a driver
// allocates or takes it from a pool, so that one process-wide bound holds
// across every request (package membudget implements it). A refused
// reservation's error is passed up unchanged: the registry answers it
// with 503 and Retry-After.
type BufferBudget interface {
	Acquire(ctx context.Context, n int64) (release func(), err error)
}

// Budgeted is a driver whose buffers can be put under a BufferBudget. It is
// set once, before the driver serves requests.
type Budgeted interface {
	SetBufferBudget(BufferBudget)
}

// NoBudget reserves nothing: the default of drivers not given a budget.
type NoBudget struct{}

// Acquire implements BufferBudget.
func (NoBudget) Acquire(context.Context, int64) (func(), error) { return func() {}, nil }
