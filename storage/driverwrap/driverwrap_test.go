package driverwrap_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/driverwrap"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

type (
	plain        struct{ storage.Driver } // hides inmemory's AbortStale
	signerOnly   struct{ storage.Driver }
	signerReaper struct{ *inmemory.Driver }
)

func (signerOnly) SignedURL(context.Context, string, time.Duration) (string, error) {
	return "inner", nil
}
func (signerReaper) SignedURL(context.Context, string, time.Duration) (string, error) {
	return "inner", nil
}

// base stands for a wrapper: it implements storage.Driver only.
type base struct{ storage.Driver }

func (b base) Unwrap() storage.Driver { return b.Driver }

func TestComposeExposesExactlyTheInnerCapabilities(t *testing.T) {
	tests := []struct {
		name               string
		inner              storage.Driver
		wantSign, wantReap bool
	}{
		{"neither", plain{inmemory.New()}, false, false},
		{"reaper", inmemory.New(), false, true},
		{"signer", signerOnly{plain{inmemory.New()}}, true, false},
		{"both", signerReaper{inmemory.New()}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var signed, reaped bool
			w := driverwrap.Compose(base{tt.inner}, tt.inner, driverwrap.Hooks{
				SignedURL: func(ctx context.Context, s storage.URLSigner, key string, ttl time.Duration) (string, error) {
					signed = true
					return s.SignedURL(ctx, key, ttl)
				},
				AbortStale: func(ctx context.Context, r storage.MultipartReaper, cutoff time.Time, dry bool) (int, error) {
					reaped = true
					return r.AbortStale(ctx, cutoff, dry)
				},
			})
			s, isSigner := w.(storage.URLSigner)
			r, isReaper := w.(storage.MultipartReaper)
			if isSigner != tt.wantSign || isReaper != tt.wantReap {
				t.Fatalf("signer=%v reaper=%v, want %v %v", isSigner, isReaper, tt.wantSign, tt.wantReap)
			}
			if isSigner {
				if u, err := s.SignedURL(context.Background(), "k", 0); err != nil || u != "inner" || !signed {
					t.Errorf("SignedURL = %q, %v (hook called: %v); want the inner answer through the hook", u, err, signed)
				}
			}
			if isReaper {
				if _, err := r.AbortStale(context.Background(), time.Now(), true); err != nil || !reaped {
					t.Errorf("AbortStale: %v (hook called: %v)", err, reaped)
				}
			}
			if got := driverwrap.Unwrap(w); got != tt.inner {
				t.Errorf("Unwrap = %T, want the inner driver", got)
			}
		})
	}
}

func TestComposeNilHooksForward(t *testing.T) {
	inner := signerReaper{inmemory.New()}
	w := driverwrap.Compose(base{inner}, inner, driverwrap.Hooks{})
	if u, err := w.(storage.URLSigner).SignedURL(context.Background(), "k", 0); err != nil || u != "inner" {
		t.Errorf("SignedURL through a nil hook = %q, %v", u, err)
	}
	if _, err := w.(storage.MultipartReaper).AbortStale(context.Background(), time.Now(), true); err != nil {
		t.Errorf("AbortStale through a nil hook: %v", err)
	}
}
