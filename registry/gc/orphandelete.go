package gc

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
)

// orphan is a data object no kept blob record names.
type orphan struct {
	ref content.DataRef
	// indexed are the digests its data index entries name.
	indexed []digest.Digest
	size    int64
	// blobData: an entry names a blob this pass collected, so this is
	// that blob's data (reclaimed bytes), not an orphan of a failed upload.
	blobData bool
}

// deleteOrphans deletes orphaned data objects (and the index entries
// naming them), each under a claim of its data key, unless its upload
// session exists: a commit in flight pins the data key before it writes
// the entry and the record, so its claim fails; and a session means the
// upload may still finish. Claims and unclaims take one lock-store round
// trip per batch, the session checks run concurrently, and the deletes go
// in batches, data before entries (a crash in between leaves data GC
// verifies again, never data without its entry).
func (p *pass) deleteOrphans(ctx context.Context, os []orphan) error {
	if len(os) == 0 {
		return nil
	}
	if p.dryRun {
		for _, o := range os {
			p.orphanDeleted(o)
		}
		return nil
	}
	for len(os) > 0 {
		n := min(len(os), claimBatch)
		if err := p.deleteOrphanBatch(ctx, os[:n]); err != nil {
			return err
		}
		os = os[n:]
	}
	return nil
}

func (p *pass) deleteOrphanBatch(ctx context.Context, os []orphan) error {
	ts := make([]content.Target, len(os))
	for i, o := range os {
		ts[i] = p.store.DataTarget(o.ref, o.indexed...)
	}
	if err := p.claimsAllowed(); err != nil {
		return err
	}
	claimed, err := p.store.ClaimAll(ctx, ts, p.cutoff, ClaimTTL)
	if err != nil {
		p.unclaim(ctx, ts) // any of them may be claimed: see claimAndDeleteBatch
		return err
	}
	var held []content.Target
	var heldOrphans []orphan
	for i, ok := range claimed {
		if ok {
			held = append(held, ts[i])
			heldOrphans = append(heldOrphans, os[i])
		}
	}
	p.mu.Lock()
	p.report.KeptByPin += len(os) - len(held)
	p.mu.Unlock()
	defer p.unclaim(ctx, held)
	session := make([]bool, len(held))
	if err := p.fanOut(ctx, len(held), func(ctx context.Context, i int) error {
		_, err := p.locks.Get(ctx, heldOrphans[i].ref.UploadID())
		session[i] = err == nil
		if err != nil && !errors.Is(err, locking.ErrNotFound) {
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	var doomed []content.Target
	var gone []orphan
	for i, t := range held {
		if !session[i] {
			doomed = append(doomed, t)
			gone = append(gone, heldOrphans[i])
		}
	}
	if err := p.store.DeleteDataTargets(ctx, doomed); err != nil {
		return err
	}
	for _, o := range gone {
		p.orphanDeleted(o)
	}
	return nil
}

// orphanDeleted counts one deleted (in a dry run: doomed) data object.
func (p *pass) orphanDeleted(o orphan) {
	if !o.blobData {
		p.decide(string(o.ref), "delete", "no blob record points at it")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if o.blobData {
		p.report.BytesReclaimed += o.size
		return
	}
	p.report.OrphansDeleted++
}
