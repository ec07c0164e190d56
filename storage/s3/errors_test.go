package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stratus-registry/stratus/storage"
)

// apiError builds what the SDK returns for an error answer.
func apiError(status int, code string) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "test"},
	}}
}

func TestClassify(t *testing.T) {
	sendErr := &smithyhttp.RequestSendError{Err: fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED)}
	tests := []struct {
		name      string
		err       error
		is        []error
		isNot     []error
		retryable bool
		throttled bool
	}{
		{"NoSuchKey", apiError(404, "NoSuchKey"), []error{storage.ErrNotFound}, nil, false, false},
		{"HEAD 404", apiError(404, "NotFound"), []error{storage.ErrNotFound}, nil, false, false},
		{"NoSuchBucket is configuration", apiError(404, "NoSuchBucket"), []error{storage.ErrMisconfigured}, []error{storage.ErrNotFound}, false, false},
		{"NoSuchUpload", apiError(404, "NoSuchUpload"), []error{storage.ErrHandleExpired, storage.ErrNotFound}, nil, false, false},
		{"PreconditionFailed", apiError(412, "PreconditionFailed"), []error{storage.ErrExists}, nil, false, false},
		{"InvalidRange", apiError(416, "InvalidRange"), []error{storage.ErrInvalidRange}, nil, false, false},
		{"SlowDown", apiError(503, "SlowDown"), nil, nil, true, true},
		{"RequestLimitExceeded", apiError(400, "RequestLimitExceeded"), nil, nil, true, true},
		{"429 without code", apiError(429, ""), nil, nil, true, true},
		{"InternalError", apiError(500, "InternalError"), nil, nil, true, false},
		{"502 without code", apiError(502, ""), nil, nil, true, false},
		{"ConditionalRequestConflict", apiError(409, "ConditionalRequestConflict"), nil, []error{storage.ErrExists}, true, false},
		{"AccessDenied is final", apiError(403, "AccessDenied"), []error{storage.ErrMisconfigured}, nil, false, false},
		{"bad secret key", apiError(403, "SignatureDoesNotMatch"), []error{storage.ErrMisconfigured}, nil, false, false},
		{"403 without code", apiError(403, ""), []error{storage.ErrMisconfigured}, nil, false, false},
		{"connection refused", sendErr, nil, nil, true, false},
		{"connection reset while reading", fmt.Errorf("read: %w", syscall.ECONNRESET), nil, nil, true, false},
		{"caller cancelled", &smithyhttp.RequestSendError{Err: context.Canceled}, []error{context.Canceled}, nil, false, false},
		{"plain error", errors.New("boom"), nil, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := opError("op", "key", tt.err)
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("%v: want errors.Is %v", err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(err, target) {
					t.Errorf("%v: want not errors.Is %v", err, target)
				}
			}
			if got := storage.Retryable(err); got != tt.retryable {
				t.Errorf("Retryable(%v) = %v; want %v", err, got, tt.retryable)
			}
			if got := storage.Throttled(err); got != tt.throttled {
				t.Errorf("Throttled(%v) = %v; want %v", err, got, tt.throttled)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap the SDK error", err)
			}
		})
	}
}
