package gc

import (
	"context"
	"errors"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry/content"
)

// sweepOrphans deletes data objects no blob record names: the data of the
// records sweepBlobs just deleted, uploads that lost a commit race, and
// commits that crashed between data and record. It costs listing calls:
// the data index (datarefs/) says which blob each data object holds, and
// sweepBlobs left the digests of the records that still exist in
// p.records (and of those it deleted in p.collected). Data with no index
// entry was written before the index existed (or by an older replica
// during an upgrade): it is verified against every record once, and its
// entries are backfilled, so a store of layout v1 pays the record reads
// on one pass, not on every pass (docs/architecture.md, "The data index").
//
// index is the data index as listDataIndex listed it, before the data:
// data committed meanwhile is younger than the cutoff, or, if its entry
// came too late for the listing, verified as unindexed data.
func (p *pass) sweepOrphans(ctx context.Context, index dataIndex) error {
	// The listing comes in concurrent shards: mu guards index and
	// unindexed; p.records and p.collected are complete and only read.
	var mu sync.Mutex
	unindexed := map[content.DataRef]bool{}
	err := p.store.EachData(ctx, p.cfg.Concurrency, func(page []content.DataEntry) error {
		var doomed []orphan
		var young []content.DataRef
		var examined int64
		mu.Lock()
		for _, e := range page {
			entries, indexed := index[e.Ref]
			delete(index, e.Ref)
			switch {
			case p.named(p.records, entries):
				examined += e.Size
			case !e.ModTime.Before(p.cutoff):
				young = append(young, e.Ref)
			case !indexed:
				unindexed[e.Ref] = true
			default:
				doomed = append(doomed, orphan{ref: e.Ref, indexed: digests(entries), size: e.Size,
					blobData: p.named(p.collected, entries)})
			}
		}
		mu.Unlock()
		p.mu.Lock()
		p.report.BytesExamined += examined
		p.mu.Unlock()
		for _, ref := range young {
			p.keptYoung(string(ref))
		}
		return p.deleteOrphans(ctx, doomed)
	})
	if err != nil {
		return err
	}
	if err := p.verifyUnindexed(ctx, unindexed); err != nil {
		return err
	}
	return p.sweepStaleIndex(ctx, index)
}

// dataIndex is the data index by data object.
type dataIndex map[content.DataRef][]content.DataIndexEntry

// listDataIndex lists the data index. It needs nothing from the blob
// sweep, so it runs alongside it: the pass waits for one listing less.
func (p *pass) listDataIndex(ctx context.Context) (dataIndex, error) {
	var mu sync.Mutex
	index := dataIndex{}
	err := p.store.EachDataIndex(ctx, p.cfg.Concurrency, func(page []content.DataIndexEntry) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range page {
			index[e.Ref] = append(index[e.Ref], e)
		}
		return nil
	})
	return index, err
}

// named reports whether an index entry of the data names a digest of set.
func (p *pass) named(set map[digest.Digest]struct{}, entries []content.DataIndexEntry) bool {
	for _, e := range entries {
		if _, ok := set[e.Digest]; ok {
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
	doomed := make([]orphan, 0, len(unindexed))
	for ref := range unindexed {
		doomed = append(doomed, orphan{ref: ref})
	}
	return p.deleteOrphans(ctx, doomed)
}

// sweepStaleIndex deletes old index entries whose data object is gone
// (a commit whose record write failed and whose data was then removed, or
// a crash between deleting data and its entry).
func (p *pass) sweepStaleIndex(ctx context.Context, left dataIndex) error {
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
