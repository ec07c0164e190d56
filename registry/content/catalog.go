package content

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stratus-registry/stratus/storage"
)

// Repositories lists up to n repository names after last, in order; more
// reports that names follow. Pagination starts the listing at last's key,
// so pages never skip or repeat a repository.
func (s *Store) Repositories(ctx context.Context, last string, n int) (names []string, more bool, err error) {
	startAfter := ""
	if last != "" {
		startAfter = CatalogKey(last)
	}
	return s.listNames(ctx, catalogPrefix, startAfter, n, repoFromCatalogKey)
}

func repoFromCatalogKey(key string) (string, bool) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(key, catalogPrefix), catalogSuffix)
	return name, ok && ValidName(name)
}

// EachRepository calls fn with every repository, one catalog page at a time.
func (s *Store) EachRepository(ctx context.Context, fn func(r *Repository) error) error {
	return s.eachPage(ctx, catalogPrefix, func(objs []storage.Info) error {
		for _, o := range objs {
			name, ok := repoFromCatalogKey(o.Key)
			if !ok {
				continue
			}
			if err := fn(&Repository{s: s, name: name}); err != nil {
				return fmt.Errorf("repository %s: %w", name, err)
			}
		}
		return nil
	})
}

// Ensure adds the repository to the catalog. A Stat first keeps the common
// case (the repository is listed) to one cheap request. Writers call it
// after writing their link or manifest, which RemoveIfEmpty relies on.
func (r *Repository) Ensure(ctx context.Context) error {
	key := CatalogKey(r.name)
	_, err := r.s.driver.Stat(ctx, key)
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	_, err = r.s.driver.Put(ctx, key, strings.NewReader(r.name), storage.PutOptions{Size: int64(len(r.name))})
	return err
}

// Exists answers ErrNameUnknown for a repository that is not in the
// catalog: the catalog entry is what makes a repository exist (Ensure
// writes it on the first push).
func (r *Repository) Exists(ctx context.Context) error {
	_, err := r.s.driver.Stat(ctx, CatalogKey(r.name))
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNameUnknown, r.name)
	}
	return err
}

// RemoveIfEmpty drops the repository from the catalog when nothing of it
// is left, and reports whether it did. Writers create their link or
// manifest BEFORE they check the catalog entry (Ensure), so re-listing
// after the delete catches any write that raced with it: either we see the
// write and restore the entry, or the writer's check comes after our
// delete and restores it itself.
func (r *Repository) RemoveIfEmpty(ctx context.Context) (bool, error) {
	if err := r.s.driver.Delete(ctx, CatalogKey(r.name)); err != nil {
		return false, err
	}
	page, err := r.s.driver.List(ctx, repoPrefix(r.name), "", 1)
	if err != nil {
		return false, err
	}
	if len(page.Objects) > 0 {
		return false, r.Ensure(ctx)
	}
	return true, nil
}
