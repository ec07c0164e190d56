package main

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// registry.gc.max_rate and busy_share: what loads, what is refused, and
// that gcStorage paces exactly when max_rate is positive.
func TestGCPacingConfig(t *testing.T) {
	tests := []struct {
		name      string
		env       []string
		sets      []string
		wantRate  float64
		wantShare float64
		wantErr   string // empty: loads
	}{
		{"unset: unpaced, the default share", nil, nil, 0, registry.DefaultGCBusyShare, ""},
		{"explicit zero rate does not pace", nil, []string{"registry.gc.max_rate=0"}, 0, registry.DefaultGCBusyShare, ""},
		{"rate from the environment", []string{"STRATUS_REGISTRY_GC_MAX_RATE=200"}, nil, 200, registry.DefaultGCBusyShare, ""},
		{"fractional rate", nil, []string{"registry.gc.max_rate=0.5"}, 0.5, registry.DefaultGCBusyShare, ""},
		{"negative rate", nil, []string{"registry.gc.max_rate=-1"}, 0, 0, "registry.gc.max_rate: -1 is outside"},
		{"rate not a number", []string{"STRATUS_REGISTRY_GC_MAX_RATE=NaN"}, nil, 0, 0, "registry.gc.max_rate"},
		{"rate too high", nil, []string{"registry.gc.max_rate=2e6"}, 0, 0, "registry.gc.max_rate: 2e+06 is outside"},
		{"rate not numeric", nil, []string{"registry.gc.max_rate=fast"}, 0, 0, "registry.gc.max_rate"},
		{"share from the environment", []string{"STRATUS_REGISTRY_GC_BUSY_SHARE=0.3"}, nil, 0, 0.3, ""},
		{"share one turns yielding off", nil, []string{"registry.gc.busy_share=1"}, 0, 1, ""},
		{"explicit zero share", nil, []string{"registry.gc.busy_share=0"}, 0, 0, "registry.gc.busy_share: 0 is outside (0, 1]"},
		{"negative share", nil, []string{"registry.gc.busy_share=-0.1"}, 0, 0, "registry.gc.busy_share: -0.1 is outside"},
		{"share above one", []string{"STRATUS_REGISTRY_GC_BUSY_SHARE=1.5"}, nil, 0, 0, "registry.gc.busy_share: 1.5 is outside"},
		{"share NaN", nil, []string{"registry.gc.busy_share=NaN"}, 0, 0, "registry.gc.busy_share"},
		{"share not numeric", nil, []string{"registry.gc.busy_share=half"}, 0, 0, "registry.gc.busy_share"},
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
			if got := cfg.Registry.GC.MaxRate; got != tt.wantRate {
				t.Fatalf("max_rate = %g, want %g", got, tt.wantRate)
			}
			if got := *cfg.Registry.GC.BusyShare; got != tt.wantShare {
				t.Fatalf("busy_share = %g, want %g", got, tt.wantShare)
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

// serve's GC driver: gated exactly when busy_share < 1, rate-limited
// on top with max_rate; the publisher runs in every case, so this
// replica's traffic is seen by GC elsewhere.
func TestOpenGCYield(t *testing.T) {
	tests := []struct {
		name       string
		sets       []string
		wantDriver bool
		wantGauge  bool
	}{
		{"default share yields", nil, true, true},
		{"share one does not", []string{"registry.gc.busy_share=1"}, false, false},
		{"share one with max_rate is only paced", []string{"registry.gc.busy_share=1", "registry.gc.max_rate=10"}, true, false},
		{"yield and max_rate", []string{"registry.gc.busy_share=0.2", "registry.gc.max_rate=10"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig("", nil, tt.sets)
			if err != nil {
				t.Fatal(err)
			}
			d := inmemory.New()
			t.Cleanup(func() { d.Close() })
			store := memory.New()
			t.Cleanup(func() { store.Close() })
			reg := prometheus.NewRegistry()
			y, err := openGCYield(context.Background(), cfg.Registry.GC, d, store, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (y.driver != nil) != tt.wantDriver {
				t.Errorf("GC driver = %v, want one: %v", y.driver, tt.wantDriver)
			}
			y.counter.Served()
			y.stop() // publishes what is left
			if n, err := store.RecentActivity(context.Background(), locking.ActivityKeep); err != nil || n != 1 {
				t.Errorf("activity after one served request and stop = %d, %v; want 1", n, err)
			}
			names := map[string]bool{}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				names[mf.GetName()] = true
			}
			if names["stratus_gc_yielding"] != tt.wantGauge {
				t.Errorf("stratus_gc_yielding registered: %v, want %v", names["stratus_gc_yielding"], tt.wantGauge)
			}
			if !names["stratus_activity_published_total"] {
				t.Errorf("stratus_activity_published_total not registered")
			}
		})
	}
}
