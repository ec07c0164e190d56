package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/stratus-registry/stratus/storage"
)

// driverName is Name() and the Driver field of every *storage.OpError.
const driverName = "azure"

// errDenied and errNoContainer name the permanent misconfigurations; they
// are never transient, so the registry reports them instead of retrying.
var (
	errDenied      = fmt.Errorf("%w: access denied by Azure Storage; check the credential and its role (Storage Blob Data Contributor on the container)", storage.ErrMisconfigured)
	errNoContainer = fmt.Errorf("%w: the container does not exist; check storage.azure.container", storage.ErrMisconfigured)
)

// opError wraps an SDK error for op on key; nil stays nil.
func (d *Driver) opError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	err = classify(err)
	if errors.Is(err, errNoContainer) || errors.Is(err, errDenied) {
		err = fmt.Errorf("account %q container %q: %w", d.account, d.cfg.Container, err)
	}
	return &storage.OpError{Op: op, Driver: driverName, Key: key, Err: err}
}

// classify translates an SDK error into the storage sentinels and marks
// transient failures. It is the only place that looks at Azure error codes.
func classify(err error) error {
	if errors.Is(err, context.Canceled) {
		// The caller gave up; that says nothing about the store.
		return err
	}
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) {
		return fmt.Errorf("%w: acquiring a token: %w", errDenied, err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if isNetworkError(err) {
			return &storage.TransientError{Err: err}
		}
		return err
	}
	code, status := re.ErrorCode, re.StatusCode
	switch {
	case code == "ContainerNotFound":
		return fmt.Errorf("%w: %w", errNoContainer, err)
	case code == "BlobNotFound" || status == http.StatusNotFound:
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case code == "BlobAlreadyExists" || code == "ConditionNotMet" || status == http.StatusPreconditionFailed:
		// Only create-only writes send If-None-Match: *; Azure answers
		// 409 BlobAlreadyExists, or 412 when the blob appeared meanwhile.
		return fmt.Errorf("%w: %w", storage.ErrExists, err)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %w", storage.ErrInvalidRange, err)
	case status == http.StatusTooManyRequests || code == "ServerBusy" || strings.HasSuffix(code, "OverAccountLimit"):
		// ServerBusy (503, sometimes 500) is how Azure throttles.
		return &storage.TransientError{Throttled: true, Err: err}
	case status == http.StatusRequestTimeout || status >= 500 || code == "OperationTimedOut":
		return &storage.TransientError{Err: err}
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return fmt.Errorf("%w: %w", errDenied, err)
	}
	// Any other answer from the store is definite (400, 409, ...).
	return err
}

// isNetworkError is storage.IsNetworkError, and also io.EOF: a bare EOF
// that reaches classify is an answer cut short.
func isNetworkError(err error) bool {
	return storage.IsNetworkError(err) || errors.Is(err, io.EOF)
}

// hasCode reports whether err is an Azure answer with one of codes.
func hasCode(err error, codes ...string) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, c := range codes {
		if re.ErrorCode == c {
			return true
		}
	}
	return false
}
