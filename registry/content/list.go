package content

import (
	"context"
	"sort"

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

// hexBounds split a listing whose keys continue with a hex digit after
// prefix into 16 ranges of about equal size (random ids, digests).
func hexBounds(prefix string) []string {
	bounds := make([]string, 0, 15)
	for _, c := range "123456789abcdef" {
		bounds = append(bounds, prefix+string(c))
	}
	return bounds
}

// eachPageSharded streams the listing of prefix as len(bounds)+1 key
// ranges listed concurrently, up to conc at a time: (-inf, bounds[0]],
// (bounds[0], bounds[1]], ..., (bounds[last], +inf). The ranges cover
// every key whatever its shape, so nothing is missed when a key does not
// follow the expected layout; the bounds only decide the balance. fn is
// called concurrently, one page of one range at a time per call. A store
// lists one stream at a few thousand keys per second (MinIO walks one
// directory per key), so a large listing is bound by that latency, not by
// the store's capacity.
func (s *Store) eachPageSharded(ctx context.Context, prefix string, bounds []string, conc int, fn func([]storage.Info) error) error {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(max(conc, 1))
	for i := 0; i <= len(bounds); i++ {
		lower, upper := "", ""
		if i > 0 {
			lower = bounds[i-1]
		}
		if i < len(bounds) {
			upper = bounds[i]
		}
		eg.Go(func() error { return s.eachPageInRange(ectx, prefix, lower, upper, fn) })
	}
	return eg.Wait()
}

// eachPageInRange streams the keys of prefix in (after, upper]; an empty
// upper has no bound.
func (s *Store) eachPageInRange(ctx context.Context, prefix, after, upper string, fn func([]storage.Info) error) error {
	for {
		page, err := s.driver.List(ctx, prefix, after, 0)
		if err != nil {
			return err
		}
		objs, done := page.Objects, !page.More || len(page.Objects) == 0
		if upper != "" {
			n := sort.Search(len(objs), func(i int) bool { return objs[i].Key > upper })
			done = done || n < len(objs)
			objs = objs[:n]
		}
		if len(objs) > 0 {
			if err := fn(objs); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		after = objs[len(objs)-1].Key
	}
}
