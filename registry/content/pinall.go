package content

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stratus-registry/stratus/locking"
)

// groupPinner is the lock store's optional ability to pin several keys in
// one round trip (locking.Pins has it). A pin store without it pins one key
// at a time, with the same outcome.
type groupPinner interface {
	PinAll(ctx context.Context, keys ...string) error
}

// pinAll pins every key as pin does, in one call to the lock store when it
// can take a group. GC keeps whatever a key's pin protects; a key GC has
// claimed makes the whole group ErrBeingDeleted, since the request relies
// on every key. The other keys of such a group may stay pinned: an extra
// pin only keeps an object one grace period longer.
func (s *Store) pinAll(ctx context.Context, required bool, keys ...string) error {
	gp, ok := s.pins.(groupPinner)
	if !ok {
		for _, k := range keys {
			if err := s.pin(ctx, k, required); err != nil {
				return err
			}
		}
		return nil
	}
	err := gp.PinAll(ctx, keys...)
	var refused *locking.RefusedError
	if !errors.As(err, &refused) && errors.Is(err, locking.ErrDeleting) {
		// A store that says ErrDeleting without naming keys: all of them.
		refused = &locking.RefusedError{Keys: keys}
	}
	if s.opts.Hooks != nil {
		for _, k := range keys {
			kerr := err
			if refused != nil {
				kerr = nil
				if refused.Refused(k) {
					kerr = locking.ErrDeleting
				}
			}
			s.opts.Hooks.AfterPin(k, kerr)
		}
	}
	if refused != nil {
		s.pinsRefused.Add(int64(len(refused.Keys)))
		return fmt.Errorf("%w: %s", ErrBeingDeleted, strings.Join(refused.Keys, ", "))
	}
	return s.pinFailed(strings.Join(keys, ", "), err, required)
}
