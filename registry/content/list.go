package content

import (
	"context"

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
