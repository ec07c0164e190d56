package gc

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
)

// sweepOrphans deletes data objects no blob record names: uploads that
// lost a commit race, or crashed between commit and record. It costs
// listing calls: the data index (datarefs/) says which blob each data
// object holds, and sweepBlobs left the digests of the records that still
// exist in p.records. Data with no index entry was written before the
// index existed (or by an older replica during an upgrade): it is
// verified against every record once, and its entries are backfilled, so
// a store of layout v1 pays the record reads on one pass, not on every
// pass (docs/architecture.md, "The data index").
func (p *pass) sweepOrphans(ctx context.Context) error {
	index := map[content.DataRef][]content.DataIndexEntry{}
	if err := p.store.EachDataIndex(ctx, func(page []content.DataIndexEntry) error {
		for _, e := range page {
			index[e.Ref] = append(index[e.Ref], e)
		}
		return nil
	}); err != nil {
		return err
	}
	unindexed := map[content.DataRef]bool{}
	err := p.store.EachData(ctx, func(page []content.DataEntry) error {
		for _, e := range page {
			entries, indexed := index[e.Ref]
			delete(index, e.Ref)
			if p.named(entries) {
				p.mu.Lock()
				p.report.BytesExamined += e.Size
				p.mu.Unlock()
				continue
			}
			if !e.ModTime.Before(p.cutoff) {
				p.keptYoung(string(e.Ref))
				continue
			}
			if !indexed {
				unindexed[e.Ref] = true
				continue
			}
			if err := p.deleteOrphan(ctx, e.Ref, digests(entries)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.verifyUnindexed(ctx, unindexed); err != nil {
		return err
	}
	return p.sweepStaleIndex(ctx, index)
}

// named reports whether an index entry of the data names a record that
// still exists.
func (p *pass) named(entries []content.DataIndexEntry) bool {
	for _, e := range entries {
		if _, ok := p.records[e.Digest]; ok {
			return true
		}
	}
	return false
}

func digests(entries []content.DataIndexEntry) []digest.Digest {
	out := make([]digest.Digest, len(entries))
	for i, e := range entries {
		out[i] = e.Digest
	}
	return out
}

// verifyUnindexed handles old data objects without an index entry: those
// whose upload session still exists are kept without further reads; for
// the rest, every blob record is read once, the data a record names is
// indexed (and kept), and what no record names is deleted.
func (p *pass) verifyUnindexed(ctx context.Context, unindexed map[content.DataRef]bool) error {
	for ref := range unindexed {
		_, err := p.locks.Get(ctx, ref.UploadID())
		switch {
		case err == nil:
			delete(unindexed, ref) // being finalized
		case !errors.Is(err, locking.ErrNotFound):
			return err
		}
	}
	if len(unindexed) == 0 {
		return nil
	}
	p.logger.Info("gc: verifying data objects without an index entry against the blob records", "objects", len(unindexed))
	named, err := p.store.RecordsNaming(ctx, unindexed, p.cfg.Concurrency)
	if err != nil {
		return err
	}
	for _, b := range named {
		delete(unindexed, b.Data)
		p.mu.Lock()
		p.report.BytesExamined += b.Size
		p.report.DataIndexed++
		p.mu.Unlock()
		if p.dryRun {
			continue
		}
		if err := p.store.IndexData(ctx, b); err != nil {
			return err
		}
	}
	for ref := range unindexed {
		if err := p.deleteOrphan(ctx, ref, nil); err != nil {
			return err
		}
	}
	return nil
}

// sweepStaleIndex deletes old index entries whose data object is gone
// (a commit whose record write failed and whose data was then removed, or
// a crash between deleting data and its entry).
func (p *pass) sweepStaleIndex(ctx context.Context, left map[content.DataRef][]content.DataIndexEntry) error {
	var doomed []content.Target
	for _, entries := range left {
		for _, e := range entries {
			if e.ModTime.Before(p.cutoff) {
				doomed = append(doomed, p.store.DataIndexTarget(e))
			}
		}
	}
	_, err := p.claimAndDelete(ctx, doomed, "data index entry ", "its data object is gone")
	return err
}

// deleteOrphan deletes one orphaned data object (and the index entries
// naming it) under a claim of its key, unless its upload session exists.
func (p *pass) deleteOrphan(ctx context.Context, ref content.DataRef, indexed []digest.Digest) error {
	if p.dryRun {
		p.decide(string(ref), "delete", "no blob record points at it")
		p.mu.Lock()
		p.report.OrphansDeleted++
		p.mu.Unlock()
		return nil
	}
	t := p.store.DataTarget(ref, indexed...)
	ok, err := p.store.Claim(ctx, t, p.cutoff, claimTTL)
	if err != nil {
		return err
	}
	if !ok {
		p.mu.Lock()
		p.report.KeptByPin++
		p.mu.Unlock()
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
	p.mu.Lock()
	p.report.OrphansDeleted++
	p.mu.Unlock()
	return nil
}
