package s3

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stratus-registry/stratus/storage"
)

// driverName is Name() and the Driver field of every *storage.OpError.
const driverName = "s3"

// throttleCodes are the error codes with which S3 (and the compatible
// servers) ask a client to slow down.
var throttleCodes = map[string]bool{
	"SlowDown":               true,
	"Throttling":             true,
	"ThrottlingException":    true,
	"RequestLimitExceeded":   true,
	"TooManyRequests":        true,
	"RequestThrottled":       true,
	"BandwidthLimitExceeded": true,
}

// misconfigCodes are answers no retry fixes, with what the operator should
// check.
var misconfigCodes = map[string]string{
	"AccessDenied":              "access denied; check the credentials and the IAM policy",
	"AllAccessDisabled":         "all access to the bucket is disabled",
	"InvalidAccessKeyId":        "the access key is not known to the store",
	"SignatureDoesNotMatch":     "the secret key does not match the access key",
	"InvalidToken":              "the session token is invalid",
	"ExpiredToken":              "the credentials expired and could not be refreshed",
	"NoSuchBucket":              "the bucket does not exist; check storage.s3.bucket and region",
	"InvalidBucketName":         "the bucket name is invalid",
	"AccountProblem":            "the AWS account has a problem that prevents the operation",
	"KMS.AccessDeniedException": "access to the KMS key is denied",
}

// transientCodes fail now but may succeed when repeated.
var transientCodes = map[string]bool{
	"InternalError":              true,
	"ServiceUnavailable":         true,
	"RequestTimeout":             true,
	"ConditionalRequestConflict": true, // a concurrent conditional write; retry to learn who won
	"XMinioServerNotInitialized": true,
}

// opError wraps an SDK error for op on key; nil stays nil.
func opError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return &storage.OpError{Op: op, Driver: driverName, Key: key, Err: classify(err)}
}

// classify translates an SDK error into the storage sentinels and marks
// transient failures. It is the only place that looks at S3 error codes.
func classify(err error) error {
	if errors.Is(err, context.Canceled) {
		// The caller gave up; that says nothing about the store. (Not
		// DeadlineExceeded: net/http's own timeouts match it too.)
		return err
	}
	code := ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	status := 0
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil {
		status = respErr.HTTPStatusCode()
	}

	switch {
	case code == "NoSuchUpload":
		return fmt.Errorf("%w: %w", storage.ErrUploadGone, err)
	case misconfigCodes[code] != "":
		// A configuration problem, not a missing object or a transient
		// failure: no retry helps until the operator fixes it.
		return fmt.Errorf("%w: %s: %w", storage.ErrMisconfigured, misconfigCodes[code], err)
	case status == 403:
		return fmt.Errorf("%w: access denied by the store (HTTP 403): %w", storage.ErrMisconfigured, err)
	case code == "NoSuchKey" || code == "NotFound" || status == 404:
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case code == "PreconditionFailed" || status == 412:
		// Only create-only writes send a precondition.
		return fmt.Errorf("%w: %w", storage.ErrExists, err)
	case code == "InvalidRange" || status == 416:
		return fmt.Errorf("%w: %w", storage.ErrInvalidRange, err)
	case throttleCodes[code] || status == 429:
		return &storage.TransientError{Throttled: true, Err: err}
	case transientCodes[code] || status >= 500:
		return &storage.TransientError{Err: err}
	case status != 0:
		// Any other answer from the store is definite (403, 400, ...).
		return err
	}
	if isNetworkError(err) {
		return &storage.TransientError{Err: err}
	}
	return err
}

// isNetworkError adds the SDK's failure to send a request to what
// storage.IsNetworkError knows.
func isNetworkError(err error) bool {
	var sendErr *smithyhttp.RequestSendError
	return errors.As(err, &sendErr) || storage.IsNetworkError(err)
}
