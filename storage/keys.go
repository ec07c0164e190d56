package storage

import (
	"fmt"
	"strings"
)

// InternalDir is where the cloud drivers keep their own objects (markers,
// multipart tails and parts, probes), below their root directory. List
// hides it and storage keys may not use it (see CheckDriverKey).
const InternalDir = "_stratus/"

// CheckDriverKey is CheckKey for a driver that keeps its own objects under
// InternalDir: such keys are ErrInvalidKey too.
func CheckDriverKey(driver, op, key string) error {
	if err := CheckKey(driver, op, key); err != nil {
		return err
	}
	if strings.HasPrefix(key, InternalDir) {
		return &OpError{Op: op, Driver: driver, Key: key,
			Err: fmt.Errorf("%w: %s is reserved for the %s driver", ErrInvalidKey, InternalDir, driver)}
	}
	return nil
}

// PossiblePrefix reports whether some valid key could start with prefix:
// every segment it completes must be a valid one. A List of any other
// prefix is empty without asking the store (some stores reject it).
func PossiblePrefix(prefix string) bool {
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return true
	}
	return ValidKey(prefix[:i])
}

// PageLimit turns the limit passed to List into a page size: def when it
// is not positive, and never more than max (the store's page size limit).
func PageLimit(limit, def, max int) int {
	if limit <= 0 {
		return def
	}
	return min(limit, max)
}

// StoreKeys checks every key with CheckDriverKey, for op, and maps them to
// the store's names with storeKey (a driver's root prefix); the first
// invalid key fails the whole call, before anything is sent.
func StoreKeys(driver, op string, keys []string, storeKey func(string) string) ([]string, error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		if err := CheckDriverKey(driver, op, k); err != nil {
			return nil, err
		}
		names[i] = storeKey(k)
	}
	return names, nil
}
