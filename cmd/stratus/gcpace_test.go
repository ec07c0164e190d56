package main

import (
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/storage/inmemory"
)

func TestGCMaxRateConfig(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		sets     []string
		wantRate float64
		wantErr  string // empty: loads
	}{
		{"unset does not pace", nil, nil, 0, ""},
		{"explicit zero does not pace", nil, []string{"registry.gc.max_rate=0"}, 0, ""},
		{"from the environment", []string{"STRATUS_REGISTRY_GC_MAX_RATE=200"}, nil, 200, ""},
		{"fractional", nil, []string{"registry.gc.max_rate=0.5"}, 0.5, ""},
		{"negative", nil, []string{"registry.gc.max_rate=-1"}, 0, "registry.gc.max_rate: -1 is outside"},
		{"not a number", []string{"STRATUS_REGISTRY_GC_MAX_RATE=NaN"}, nil, 0, "registry.gc.max_rate"},
		{"too high", nil, []string{"registry.gc.max_rate=2e6"}, 0, "registry.gc.max_rate: 2e+06 is outside"},
		{"not numeric", nil, []string{"registry.gc.max_rate=fast"}, 0, "registry.gc.max_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig("", tt.env, tt.sets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadConfig = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Registry.GC.MaxRate != tt.wantRate {
				t.Fatalf("max_rate = %g, want %g", cfg.Registry.GC.MaxRate, tt.wantRate)
			}
			d := inmemory.New()
			t.Cleanup(func() { d.Close() })
			paced := gcStorage(cfg.Registry.GC, d)
			if (paced != nil) != (tt.wantRate > 0) {
				t.Fatalf("gcStorage = %v for max_rate %g; want a paced driver exactly when it is positive", paced, tt.wantRate)
			}
		})
	}
}
