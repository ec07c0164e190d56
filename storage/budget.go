package storage

import (
	"context"
	"errors"
)

// BufferBudget reserves the bytes of a large buffer before a driver
// allocates or takes it from a pool, so that one process-wide bound holds
// across every request (package membudget implements it). A refused
// reservation's error is passed up unchanged: the registry answers it
// with 503 and Retry-After.
type BufferBudget interface {
	Acquire(ctx context.Context, n int64) (release func(), err error)
}

// ErrBudgetExhausted is a BufferBudget's refusal: the process's buffers
// stayed at their bound for the whole wait. The registry answers 503 with
// Retry-After.
var ErrBudgetExhausted = errors.New("process memory budget exhausted")

// Budgeted is a driver whose buffers can be put under a BufferBudget. It is
// set once, before the driver serves requests.
type Budgeted interface {
	SetBufferBudget(BufferBudget)
}

// NoBudget reserves nothing: the default of drivers not given a budget.
type NoBudget struct{}

// Acquire implements BufferBudget.
func (NoBudget) Acquire(context.Context, int64) (func(), error) { return func() {}, nil }
