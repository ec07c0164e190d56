package gc

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// sweepBlobs deletes the records and data of blobs no live manifest uses.
// It costs one listing call per page of records and one batch of claims
// per page of candidates; no record is read. The digests of the records
// it keeps, and of those it deleted, are remembered for the orphan sweep.
func (p *pass) sweepBlobs(ctx context.Context) error {
	return p.store.EachBlob(ctx, p.cfg.Concurrency, func(page []content.Entry) error {
		// p.live is complete (the mark is over) and only read from here
		// on; pages of different shards of the listing come concurrently.
		var candidates []digest.Digest
		var young []digest.Digest
		p.mu.Lock()
		for _, e := range page {
			_, live := p.live[e.Digest]
			switch {
			case live:
				p.records[e.Digest] = struct{}{}
			case !e.ModTime.Before(p.cutoff):
				p.records[e.Digest] = struct{}{}
				young = append(young, e.Digest)
			default:
				candidates = append(candidates, e.Digest)
			}
		}
		p.report.BlobsExamined += len(page)
		p.mu.Unlock()
		for _, d := range young {
			p.keptYoung("blob " + d.String())
		}
		if err := p.deleteBlobs(ctx, candidates); err != nil {
			return err
		}
		if len(page) > 0 {
			p.progress("sweep", "last_blob", page[len(page)-1].Digest.String())
		}
		return nil
	})
}

// deleteBlobs claims unmarked, old blobs by digest and deletes their
// records. Their data objects (and data index entries) go later, in
// sweepOrphans, which lists the data anyway and finds them through the
// index: so no record is read here, and records still go before data (a
// crash in between leaves orphaned data, collected later, never a record
// without bytes). Only here, where no repository needs the blob any more,
// is the digest itself claimed (content.Store.BlobTarget).
func (p *pass) deleteBlobs(ctx context.Context, ds []digest.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	ts := make([]content.Target, len(ds))
	for i, d := range ds {
		ts[i] = p.store.BlobTarget(d)
	}
	deleted, err := p.claimAndDelete(ctx, ts, "blob ", "no live manifest references it")
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range deleted {
		p.collected[t.Digest] = struct{}{}
	}
	for _, d := range ds {
		if _, gone := p.collected[d]; !gone {
			p.records[d] = struct{}{} // kept by a pin
		}
	}
	p.report.BlobsDeleted += len(deleted)
	return nil
}
