package gc

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/locking"
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
	for _, t := range got {
		p.unclaim(ctx, t)
	}
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

// sweepBlobs deletes the records and data of blobs no live manifest uses.
func (p *pass) sweepBlobs(ctx context.Context) error {
	return p.store.EachBlob(ctx, func(page []content.Entry) error {
		blobs := make([]*content.Blob, len(page))
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(p.cfg.Concurrency)
		for i, e := range page {
			eg.Go(func() error {
				b, err := p.store.Stat(ectx, e.Digest)
				if errors.Is(err, content.ErrBlobUnknown) {
					return nil
				}
				if err != nil {
					return err
				}
				blobs[i] = &b
				return nil
			})
		}
		if err := eg.Wait(); err != nil {
			return err
		}
		doomed, data := p.blobCandidates(page, blobs)
		// Records go before data: a crash in between leaves an orphaned
		// data object (collected later), never a record without bytes.
		// Only here, where no repository needs the blob any more, is the
		// digest itself claimed (content.Store.BlobTarget).
		deleted, err := p.claimAndDelete(ctx, doomed, "blob ", "no live manifest references it")
		if err != nil {
			return err
		}
		// The data objects of deleted records: a new upload of the same
		// digest writes a new data key, so these are nobody's any more.
		var refs []content.DataRef
		var reclaimed int64
		for _, t := range deleted {
			refs = append(refs, data[t.Digest].Data)
			reclaimed += data[t.Digest].Size
		}
		if !p.dryRun {
			if err := p.store.DeleteData(ctx, refs); err != nil {
				return err
			}
		}
		p.mu.Lock()
		p.report.BlobsDeleted += len(deleted)
		p.report.BytesReclaimed += reclaimed
		p.mu.Unlock()
		if len(page) > 0 {
			p.progress("sweep", "last_blob", page[len(page)-1].Digest.String())
		}
		return nil
	})
}

// blobCandidates counts the listed blobs, remembers the data objects their
// records name, and returns the unmarked ones older than grace.
func (p *pass) blobCandidates(page []content.Entry, blobs []*content.Blob) ([]content.Target, map[digest.Digest]content.Blob) {
	var doomed []content.Target
	data := map[digest.Digest]content.Blob{}
	for i, b := range blobs {
		if b == nil {
			continue
		}
		p.mu.Lock()
		p.report.BlobsExamined++
		p.report.BytesExamined += b.Size
		_, live := p.live[b.Digest]
		p.liveData[b.Data] = struct{}{}
		p.mu.Unlock()
		switch {
		case live:
		case !page[i].ModTime.Before(p.cutoff):
			p.keptYoung("blob " + b.Digest.String())
		default:
			doomed = append(doomed, p.store.BlobTarget(b.Digest))
			data[b.Digest] = *b
		}
	}
	return doomed, data
}

// sweepOrphans deletes data objects no blob record names: uploads that
// lost a commit race, or crashed between commit and record. A data object
// whose upload session still exists is being finalized: kept.
func (p *pass) sweepOrphans(ctx context.Context) error {
	return p.store.EachData(ctx, func(page []content.DataEntry) error {
		for _, e := range page {
			p.mu.Lock()
			_, referenced := p.liveData[e.Ref]
			p.mu.Unlock()
			if referenced {
				continue
			}
			if !e.ModTime.Before(p.cutoff) {
				p.keptYoung(string(e.Ref))
				continue
			}
			if p.dryRun {
				p.decide(string(e.Ref), "delete", "no blob record points at it")
				p.report.OrphansDeleted++
				continue
			}
			if err := p.deleteOrphan(ctx, e.Ref); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteOrphan deletes one orphaned data object under a claim of its key,
// unless its upload session exists.
func (p *pass) deleteOrphan(ctx context.Context, ref content.DataRef) error {
	t := p.store.DataTarget(ref)
	ok, err := p.store.Claim(ctx, t, p.cutoff, claimTTL)
	if err != nil {
		return err
	}
	if !ok {
		p.report.KeptByPin++
		return nil
	}
	defer p.unclaim(ctx, t)
	_, serr := p.locks.Get(ctx, ref.UploadID())
	if serr != nil && !errors.Is(serr, locking.ErrNotFound) {
		return serr
	}
	if serr == nil {
		return nil
	}
	if err := p.store.DeleteOne(ctx, t); err != nil {
		return err
	}
	p.report.OrphansDeleted++
	return nil
}
