package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/stratus-registry/stratus/storage"
)

// TestSetMemoryLimit: limits.memory becomes the Go runtime's soft limit
// (plus headroom), unless the operator set GOMEMLIMIT.
func TestSetMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	tests := []struct {
		name       string
		memory     storage.Size
		gomemlimit string
		start      int64
		want       int64
	}{
		{"from limits.memory", 256 << 20, "", math.MaxInt64, 256<<20 + runtimeHeadroom},
		{"a larger budget", 1 << 30, "", math.MaxInt64, 1<<30 + runtimeHeadroom},
		{"GOMEMLIMIT wins", 256 << 20, "300MiB", 300 << 20, 300 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(tt.start)
			c := LimitsConfig{Memory: tt.memory}
			c.setMemoryLimit(tt.gomemlimit, slog.New(slog.DiscardHandler))
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Fatalf("memory limit %d, want %d", got, tt.want)
			}
		})
	}
}
