package gc

import (
	"context"

	"github.com/stratus-registry/stratus/registry/content"
)

// claimBatch is how many claims share one round trip to the lock store.
const claimBatch = 500

// claimAndDelete claims each target (under exactly the scope it deletes),
// deletes the claimed ones in batches and releases the claims. It returns
// the targets it deleted (or would, in a dry run). Claims and unclaims go
// claimBatch at a time, one lock-store round trip each: a pass that
// deletes half a store makes tens of thousands of them.
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
	var deleted []content.Target
	for len(ts) > 0 {
		n := min(len(ts), claimBatch)
		got, err := p.claimAndDeleteBatch(ctx, ts[:n])
		deleted = append(deleted, got...)
		if err != nil {
			return deleted, err
		}
		ts = ts[n:]
	}
	return deleted, nil
}

func (p *pass) claimAndDeleteBatch(ctx context.Context, ts []content.Target) ([]content.Target, error) {
	if err := p.claimsAllowed(); err != nil {
		return nil, err
	}
	claimed, err := p.store.ClaimAll(ctx, ts, p.cutoff, ClaimTTL)
	if err != nil {
		// Any of them may be claimed (a lost reply): release them all
		// rather than block their pins until the claims expire. Only this
		// pass claims, and no other deletion of it targets these keys.
		p.unclaim(ctx, ts)
		return nil, err
	}
	var got []content.Target
	for i, t := range ts {
		if claimed[i] {
			got = append(got, t)
		}
	}
	p.mu.Lock()
	p.report.KeptByPin += len(ts) - len(got)
	p.mu.Unlock()
	err = p.store.Delete(ctx, got)
	p.unclaim(ctx, got)
	if err != nil {
		return nil, err
	}
	return got, nil
}

// unclaim releases claims; a failure is logged, and the claims expire on
// their own after ClaimTTL.
func (p *pass) unclaim(ctx context.Context, ts []content.Target) {
	if len(ts) == 0 {
		return
	}
	if err := p.store.UnclaimAll(context.WithoutCancel(ctx), ts); err != nil {
		p.logger.Warn("gc: unclaim failed; the claims expire on their own", "claims", len(ts), "first", ts[0].ClaimKey(), "err", err)
	}
}
