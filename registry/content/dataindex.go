package content

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/storage"
)

// The data index (layout v2) lets GC's orphan sweep tell referenced data
// objects from orphans by listing, instead of reading every blob record:
// a commit writes the empty object datarefs/<upload-id>/<alg>-<hex> before
// the create-only record of <alg>:<hex>, and GC deletes it after the data.
// So data named by a record written by this version always has an entry.
// Data without one was written by an earlier version (or is an orphan):
// the sweep verifies those against the records and backfills their
// entries (docs/architecture.md, "The data index").

func (s *Store) putDataIndex(ctx context.Context, uploadID string, d digest.Digest) error {
	_, err := s.driver.Put(ctx, DataIndexKey(uploadID, d), strings.NewReader(""), storage.PutOptions{Size: 0})
	return err
}

func (s *Store) deleteDataIndexQuietly(ctx context.Context, uploadID string, d digest.Digest) {
	key := DataIndexKey(uploadID, d)
	if err := s.driver.Delete(context.WithoutCancel(ctx), key); err != nil {
		s.logger.Warn("cleanup failed; GC will remove it", "key", key, "err", err)
	}
}

// DataIndexEntry is one listed entry of the data index.
type DataIndexEntry struct {
	Ref     DataRef
	Digest  digest.Digest
	ModTime time.Time
}

// EachDataIndex calls fn with the data index, a page at a time, listing
// up to conc shards concurrently: fn is called concurrently.
func (s *Store) EachDataIndex(ctx context.Context, conc int, fn func([]DataIndexEntry) error) error {
	return s.eachPageSharded(ctx, hexShards(dataIndexPrefix), conc, func(objs []storage.Info) error {
		page := make([]DataIndexEntry, 0, len(objs))
		for _, o := range objs {
			if id, d, ok := dataIndexFromKey(o.Key); ok {
				page = append(page, DataIndexEntry{Ref: DataRef(DataKey(id)), Digest: d, ModTime: o.ModTime})
			}
		}
		return fn(page)
	})
}

// IndexData backfills the index entry of a record read from the store
// (data written before the index existed).
func (s *Store) IndexData(ctx context.Context, b Blob) error {
	return s.putDataIndex(ctx, b.Data.UploadID(), b.Digest)
}

// DataIndexTarget deletes an index entry whose data is gone, under a claim
// of the data key: a commit of that data pins the key before writing the
// entry, so a claimed key has no commit in flight.
func (s *Store) DataIndexTarget(e DataIndexEntry) Target {
	return Target{Digest: e.Digest, claim: string(e.Ref), keys: []string{DataIndexKey(e.Ref.UploadID(), e.Digest)}}
}

// RecordsNaming reads every blob record (one GET each, concurrency conc)
// and returns those whose data is in want: the verification of data
// objects that have no index entry. It is the layout v1 cost, paid only
// while such data exists.
func (s *Store) RecordsNaming(ctx context.Context, want map[DataRef]bool, conc int) ([]Blob, error) {
	var found []Blob
	err := s.EachBlob(ctx, 1, func(page []Entry) error {
		recs := make([]*Blob, len(page))
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(conc)
		for i, e := range page {
			eg.Go(func() error {
				b, err := s.readRecord(ectx, e.Digest)
				if err == nil && want[b.Data] {
					recs[i] = &b
				}
				if errors.Is(err, storage.ErrNotFound) {
					return nil
				}
				return err
			})
		}
		if err := eg.Wait(); err != nil {
			return err
		}
		for _, b := range recs {
			if b != nil {
				found = append(found, *b)
			}
		}
		return nil
	})
	return found, err
}
