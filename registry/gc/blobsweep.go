package gc

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/registry/content"
)

// sweepBlobs deletes the records and data of blobs no live manifest uses.
// It costs one listing call per page of records: only the records it is
// about to delete are read (their data key is needed to delete the data).
// The digests of the records it keeps are remembered for the orphan sweep.
func (p *pass) sweepBlobs(ctx context.Context) error {
	return p.store.EachBlob(ctx, func(page []content.Entry) error {
		// p.live is complete (mark is over) and p.records is only written
		// by this goroutine: no lock is needed for either.
		var candidates []digest.Digest
		for _, e := range page {
			_, live := p.live[e.Digest]
			switch {
			case live:
				p.records[e.Digest] = struct{}{}
			case !e.ModTime.Before(p.cutoff):
				p.records[e.Digest] = struct{}{}
				p.keptYoung("blob " + e.Digest.String())
			default:
				candidates = append(candidates, e.Digest)
			}
		}
		p.mu.Lock()
		p.report.BlobsExamined += len(page)
		p.mu.Unlock()
		if err := p.deleteBlobs(ctx, candidates); err != nil {
			return err
		}
		if len(page) > 0 {
			p.progress("sweep", "last_blob", page[len(page)-1].Digest.String())
		}
		return nil
	})
}

// deleteBlobs reads the records of unmarked, old blobs, claims each by
// digest and deletes record, then data, then the data index entry. Records
// go before data: a crash in between leaves an orphaned data object
// (collected later), never a record without bytes. Only here, where no
// repository needs the blob any more, is the digest itself claimed
// (content.Store.BlobTarget).
func (p *pass) deleteBlobs(ctx context.Context, ds []digest.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	blobs := make([]*content.Blob, len(ds))
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(p.cfg.Concurrency)
	for i, d := range ds {
		eg.Go(func() error {
			b, err := p.store.Stat(ectx, d)
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
	var doomed []content.Target
	byDigest := map[digest.Digest]content.Blob{}
	for _, b := range blobs {
		if b != nil {
			doomed = append(doomed, p.store.BlobTarget(b.Digest))
			byDigest[b.Digest] = *b
		}
	}
	deleted, err := p.claimAndDelete(ctx, doomed, "blob ", "no live manifest references it")
	if err != nil {
		return err
	}
	gone := map[digest.Digest]bool{}
	var data []content.Blob
	var reclaimed int64
	for _, t := range deleted {
		gone[t.Digest] = true
		data = append(data, byDigest[t.Digest])
		reclaimed += byDigest[t.Digest].Size
	}
	// A new upload of the same digest writes a new data key, so these data
	// objects are nobody's any more.
	if !p.dryRun {
		if err := p.store.DeleteData(ctx, data); err != nil {
			return err
		}
	}
	for d := range byDigest {
		if !gone[d] || p.dryRun {
			p.records[d] = struct{}{} // kept by a pin (or a dry run)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.report.BlobsDeleted += len(deleted)
	p.report.BytesReclaimed += reclaimed
	return nil
}
