package content

import (
	"context"
	"strings"
)

// RepositoriesWithPrefix is Repositories restricted to names that start
// with prefix: one listing of the catalog keys under that prefix, so a
// search never walks the names before it.
func (s *Store) RepositoriesWithPrefix(ctx context.Context, prefix, last string, n int) (names []string, more bool, err error) {
	startAfter := ""
	if last != "" {
		startAfter = CatalogKey(last)
	}
	return s.listNames(ctx, catalogPrefix+prefix, startAfter, n, func(key string) (string, bool) {
		name, ok := repoFromCatalogKey(key)
		return name, ok && strings.HasPrefix(name, prefix)
	})
}
