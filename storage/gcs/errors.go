package gcs

import (
	"context"
	"errors"
	"fmt"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/stratus-registry/stratus/storage"
)

// driverName is Name() and the Driver field of every *storage.OpError.
const driverName = "gcs"

// opError wraps a client error for op on key; nil stays nil.
func opError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return &storage.OpError{Op: op, Driver: driverName, Key: key, Err: classify(err)}
}

// classify translates a client error into the storage sentinels and marks
// transient failures. It is the only place that looks at GCS status codes.
func classify(err error) error {
	if errors.Is(err, context.Canceled) {
		// The caller gave up; that says nothing about the store.
		return err
	}
	switch {
	case errors.Is(err, gcs.ErrBucketNotExist):
		// A configuration problem, not a missing object.
		return fmt.Errorf("%w: the bucket does not exist; check storage.gcs.bucket: %w", storage.ErrMisconfigured, err)
	case errors.Is(err, gcs.ErrObjectNotExist):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	var apiErr *googleapi.Error
	if errors.As(err, &apiErr) {
		return classifyStatus(apiErr.Code, err)
	}
	if storage.IsNetworkError(err) {
		return &storage.TransientError{Err: err}
	}
	return err
}

// classifyStatus maps an HTTP status from GCS.
func classifyStatus(code int, err error) error {
	switch {
	case code == 404:
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case code == 412:
		// Only create-only writes and pinned-generation composes send a
		// precondition.
		return fmt.Errorf("%w: %w", storage.ErrExists, err)
	case code == 416:
		return fmt.Errorf("%w: %w", storage.ErrInvalidRange, err)
	case code == 401 || code == 403:
		return fmt.Errorf("%w: access denied by GCS; the credentials need roles/storage.objectUser on the bucket: %w", storage.ErrMisconfigured, err)
	case code == 429:
		return &storage.TransientError{Throttled: true, Err: err}
	case code == 408 || code >= 500:
		return &storage.TransientError{Err: err}
	}
	// Any other answer from the store is definite (400, 409, ...).
	return err
}
