package locking

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid: an argument no backend can honour (an empty key, a
// non-positive ttl). It is a caller bug, never worth retrying.
var ErrInvalid = errors.New("locking: invalid argument")

// CheckKey rejects an empty key or digest. Backends call it so that every
// implementation refuses the same inputs; what is checked lives here once.
func CheckKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	return nil
}

// CheckKeys is CheckKey of every key of a batch (PinAll, ClaimMany),
// with all failures.
func CheckKeys(what string, keys []string) error {
	var errs []error
	for _, k := range keys {
		if err := CheckKey(what, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckTTL rejects a ttl that would make an entry expire before it exists.
func CheckTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl must be positive, got %v", ErrInvalid, ttl)
	}
	return nil
}
