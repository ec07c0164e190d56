package gc

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/registry/content"
)

// claimAndDelete claims each target (under exactly the scope it deletes),
// deletes the claimed ones in batches and releases the claims. It returns
// the targets it deleted (or would, in a dry run).
func (p *pass) claimAndDelete(ctx context.Context, ts []content.Target, what, reason string) ([]content.Target, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	if p.dryRun {
		for _, t := range ts {
			p.decide(what+t.Digest.String(), "delete", reason)
		}
		return ts, nil
	}
	claimed := make([]bool, len(ts))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(p.cfg.Concurrency)
	for i, t := range ts {
		eg.Go(func() error {
			ok, err := p.store.Claim(ectx, t, p.cutoff, claimTTL)
			claimed[i] = ok
			return err
		})
	}
	err := eg.Wait()
	var got []content.Target
	for i, t := range ts {
		if claimed[i] {
			got = append(got, t)
		} else if err == nil {
			p.mu.Lock()
			p.report.KeptByPin++
			p.mu.Unlock()
		}
	}
	if err == nil {
		err = p.store.Delete(ctx, got)
	}
	// Unclaims as concurrently as the claims: one Redis round trip each,
	// and a pass that deletes half a store makes tens of thousands.
	var ug errgroup.Group
	ug.SetLimit(p.cfg.Concurrency)
	for _, t := range got {
		ug.Go(func() error { p.unclaim(ctx, t); return nil })
	}
	_ = ug.Wait() // unclaim logs its own failures; a claim also expires
	if err != nil {
		return nil, err
	}
	return got, nil
}

func (p *pass) unclaim(ctx context.Context, t content.Target) {
	if err := p.store.Unclaim(context.WithoutCancel(ctx), t); err != nil {
		p.logger.Warn("gc: unclaim failed; the claim expires on its own", "claim", t.ClaimKey(), "err", err)
	}
}
