package inmemory_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func TestDriver(t *testing.T) {
	shared := inmemory.New()
	size := int64(32 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	// The driver holds objects in memory by design, so the heap checks of
	// the large-object test do not apply to it.
	drivertest.RunWith(t, func(t *testing.T) storage.Driver {
		d := shared.Clone()
		t.Cleanup(func() { _ = d.Close() })
		return d
	}, drivertest.Config{SkipBoundedMemory: true, LargeSize: size})
}

// TestFaultyWrapper: the fault-injecting wrapper with no rules meets the
// same contract as the driver it wraps.
func TestFaultyWrapper(t *testing.T) {
	shared := inmemory.New()
	drivertest.RunWith(t, func(t *testing.T) storage.Driver {
		d := drivertest.NewFaulty(shared.Clone())
		t.Cleanup(func() { _ = d.Close() })
		return d
	}, drivertest.Config{SkipBoundedMemory: true, LargeSize: 8 << 20})
}

func TestStoresAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := inmemory.New(), inmemory.New()
	if _, err := a.Put(ctx, "k", bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		d       *inmemory.Driver
		present bool
	}{
		{"same driver", a, true},
		{"clone shares the store", a.Clone(), true},
		{"New has its own store", b, false},
	}
	for _, tt := range tests {
		_, err := tt.d.Stat(ctx, "k")
		if got := err == nil; got != tt.present {
			t.Errorf("%s: Stat = %v; want present %v", tt.name, err, tt.present)
		}
	}
}
