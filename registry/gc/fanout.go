package gc

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// fanOut runs fn(ctx, i) for every i < n, concurrently. Each call holds
// one of the pass's request slots (registry.gc.concurrency of them), so
// the reads, claims and deletes of every repository being collected at
// the same time share one bound instead of multiplying it. The first
// error cancels the rest and is returned.
func (p *pass) fanOut(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	eg, ectx := errgroup.WithContext(ctx)
	for i := range n {
		select {
		case p.slots <- struct{}{}:
		case <-ectx.Done():
			if err := eg.Wait(); err != nil {
				return err
			}
			return ctx.Err()
		}
		eg.Go(func() error {
			defer func() { <-p.slots }()
			return fn(ectx, i)
		})
	}
	return eg.Wait()
}
