// Package policy holds what the repository policies (policy/immutable,
// policy/retention) share: the checks of the globs their rules are written
// in.
package policy

import (
	"fmt"

	"github.com/bmatcuk/doublestar/v4"
)

// CheckRepository checks a rule's required repository glob; key is its
// key path ("policies.retention[0].repository").
func CheckRepository(key, pattern string) error {
	if pattern == "" {
		return fmt.Errorf("%s: required", key)
	}
	return CheckGlob(key, pattern)
}

// CheckGlob checks one non-empty doublestar glob at key.
func CheckGlob(key, pattern string) error {
	if pattern == "" || !doublestar.ValidatePattern(pattern) {
		return fmt.Errorf("%s: %q is not a valid glob", key, pattern)
	}
	return nil
}
