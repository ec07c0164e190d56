package main

import (
	"strings"
	"testing"
)

func TestLimitsConfig(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		env         []string
		wantRate    float64
		wantBurst   int
		wantUploads int
		wantErr     []string
	}{
		{name: "defaults: rate off, 1000 uploads", wantUploads: 1000},
		{name: "rate with default burst", file: "limits:\n  rate:\n    requests_per_second: 2.5\n", wantRate: 2.5, wantBurst: 3, wantUploads: 1000},
		{name: "slow rate bursts at least 1", file: "limits:\n  rate:\n    requests_per_second: 0.1\n", wantRate: 0.1, wantBurst: 1, wantUploads: 1000},
		{name: "from the environment", env: []string{"STRATUS_LIMITS_RATE_REQUESTS_PER_SECOND=50", "STRATUS_LIMITS_RATE_BURST=200", "STRATUS_LIMITS_UPLOADS_PER_REPOSITORY=10"},
			wantRate: 50, wantBurst: 200, wantUploads: 10},
		{name: "negative rate", file: "limits:\n  rate:\n    requests_per_second: -1\n", wantErr: []string{"limits.rate.requests_per_second"}},
		{name: "absurd rate", file: "limits:\n  rate:\n    requests_per_second: 1e9\n", wantErr: []string{"limits.rate.requests_per_second"}},
		{name: "burst without rate", file: "limits:\n  rate:\n    burst: 5\n", wantErr: []string{"limits.rate.burst: set but"}},
		{name: "negative burst", file: "limits:\n  rate:\n    requests_per_second: 5\n    burst: -2\n", wantErr: []string{"limits.rate.burst: must not be negative"}},
		{name: "explicit zero burst", file: "limits:\n  rate:\n    requests_per_second: 5\n    burst: 0\n", wantErr: []string{"limits.rate.burst: a zero or empty value is not valid"}},
		{name: "negative uploads", file: "limits:\n  uploads_per_repository: -1\n", wantErr: []string{"limits.uploads_per_repository: -1 is negative"}},
		{name: "negative uploads per user", file: "limits:\n  uploads_per_user: -1\n", wantErr: []string{"limits.uploads_per_user: -1 is negative"}},
		{name: "explicit zero uploads per user", file: "limits:\n  uploads_per_user: 0\n", wantErr: []string{"limits.uploads_per_user: a zero or empty value is not valid"}},
		{name: "every error at once", file: "limits:\n  rate:\n    requests_per_second: -3\n  uploads_per_repository: -1\n",
			wantErr: []string{"limits.rate.requests_per_second", "limits.uploads_per_repository"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadCase(t, tt.file, tt.env, tt.wantErr)
			if cfg == nil {
				return
			}
			l := cfg.Limits
			if l.Rate.RequestsPerSecond != tt.wantRate || l.Rate.Burst != tt.wantBurst || l.UploadsPerRepository != tt.wantUploads {
				t.Errorf("limits = %+v, want rate %g burst %d uploads %d", l, tt.wantRate, tt.wantBurst, tt.wantUploads)
			}
		})
	}
}

// loadCase loads a configuration from file (none if empty) and env. With
// wantErr it checks that loading fails mentioning each of them and returns
// nil; otherwise it fails the test on any error.
func loadCase(t *testing.T, file string, env, wantErr []string) *Config {
	t.Helper()
	path := ""
	if file != "" {
		path = writeConfig(t, file)
	}
	cfg, err := loadConfig(path, env, nil)
	if len(wantErr) > 0 {
		if err == nil {
			t.Fatalf("want errors %q, got none", wantErr)
		}
		for _, w := range wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
