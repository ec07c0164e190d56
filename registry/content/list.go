package content

import (
	"context"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/storage"
)

// listPage is the page size of the store listings behind one answer.
const listPage = 1000

// listNames lists up to n names under prefix after startAfter, mapping each
// key to a name with toName (which returns false for keys to skip). more
// reports that names after the last one returned exist.
func (s *Store) listNames(ctx context.Context, prefix, startAfter string, n int, toName func(key string) (string, bool)) (names []string, more bool, err error) {
	names = []string{}
	after := startAfter
	for len(names) < n {
		page, err := s.driver.List(ctx, prefix, after, min(listPage, n-len(names)+1))
		if err != nil {
			return nil, false, err
		}
		for _, o := range page.Objects {
			if nm, ok := toName(o.Key); ok {
				if len(names) == n {
					return names, true, nil
				}
				names = append(names, nm)
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return names, false, nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
	// Filled exactly: peek whether anything follows.
	page, err := s.driver.List(ctx, prefix, after, 1)
	if err != nil {
		return nil, false, err
	}
	return names, len(page.Objects) > 0, nil
}

// eachPage streams a listing page by page.
func (s *Store) eachPage(ctx context.Context, prefix string, fn func([]storage.Info) error) error {
	after := ""
	for {
		page, err := s.driver.List(ctx, prefix, after, 0)
		if err != nil {
			return err
		}
		if len(page.Objects) > 0 {
			if err := fn(page.Objects); err != nil {
				return err
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

// hexShards splits the listing of prefix, whose keys continue with a
// lowercase hex digit (upload ids, digests), into 16 prefixes of about
// equal size.
func hexShards(prefix string) []string {
	shards := make([]string, 0, 16)
	for _, c := range "0123456789abcdef" {
		shards = append(shards, prefix+string(c))
	}
	return shards
}

// recordShards are the prefixes of every blob record key: 16 for sha256
// (nearly every blob) and one for each other algorithm. Records exist only
// for the supported algorithms, with lowercase hex (BlobRecordKey of a
// parsed digest), so the shards miss no record: a record missed here
// would make its data look orphaned.
func recordShards() []string {
	var shards []string
	for _, alg := range Algorithms {
		p := blobsPrefix + alg.String() + "/"
		if alg == digest.SHA256 {
			shards = append(shards, hexShards(p)...)
		} else {
			shards = append(shards, p)
		}
	}
	return shards
}

// eachPageSharded streams the listings of prefixes (disjoint shards of
// one listing), up to conc of them at a time, so fn is called
// concurrently. A store lists one stream at a few thousand keys per
// second (MinIO walks one directory per key, and a listing that starts
// after a key still walks to it), so a large listing is bound by that
// latency; shards that are real prefixes let each stream walk only its
// own part.
func (s *Store) eachPageSharded(ctx context.Context, prefixes []string, conc int, fn func([]storage.Info) error) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(max(conc, 1))
	for _, prefix := range prefixes {
		eg.Go(func() error { return s.eachPage(ectx, prefix, fn) })
	}
	return eg.Wait()
}
