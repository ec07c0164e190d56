package filesystem

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/stratus-registry/stratus/storage"
)

// The errno values a key/"directory" clash produces.
var (
	errNotDir = syscall.ENOTDIR
	errIsDir  = syscall.EISDIR
)

func opErr(op, key string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		err = fmt.Errorf("%w: %w", storage.ErrFull, err)
	}
	return &storage.OpError{Op: op, Driver: driverName, Key: key, Err: err}
}

// translate maps OS errors onto storage sentinels. A missing file and a
// path running through a regular file ("a/b" when "a" is an object) both
// mean the key does not exist. The OS error stays in the chain for logs.
func translate(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	return err
}
