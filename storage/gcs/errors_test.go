package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"syscall"
	"testing"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/stratus-registry/stratus/storage"
)

func TestClassify(t *testing.T) {
	apiErr := func(code int) error { return &googleapi.Error{Code: code, Message: "test"} }
	tests := []struct {
		name      string
		err       error
		is        []error
		isNot     []error
		retryable bool
		throttled bool
	}{
		{"object not found", gcs.ErrObjectNotExist, []error{storage.ErrNotFound}, nil, false, false},
		{"404", apiErr(404), []error{storage.ErrNotFound}, nil, false, false},
		{"bucket not found is configuration", gcs.ErrBucketNotExist, nil, []error{storage.ErrNotFound}, false, false},
		{"412 precondition", apiErr(412), []error{storage.ErrExists}, nil, false, false},
		{"416 range", apiErr(416), []error{storage.ErrInvalidRange}, nil, false, false},
		{"429", apiErr(429), nil, nil, true, true},
		{"408", apiErr(408), nil, nil, true, false},
		{"500", apiErr(500), nil, nil, true, false},
		{"503", apiErr(503), nil, nil, true, false},
		{"403 is final", apiErr(403), nil, nil, false, false},
		{"400 is final", apiErr(400), nil, nil, false, false},
		{"connection refused", &url.Error{Op: "Post", URL: "http://x", Err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}, nil, nil, true, false},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), nil, nil, true, false},
		{"caller cancelled", fmt.Errorf("upload: %w", context.Canceled), []error{context.Canceled}, nil, false, false},
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
				t.Errorf("%v does not wrap the client error", err)
			}
		})
	}
}
