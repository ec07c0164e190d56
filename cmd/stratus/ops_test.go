package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// countingStat counts the probes that reach the store.
type countingStat struct {
	storage.Driver
	stats atomic.Int64
}

func (c *countingStat) Stat(ctx context.Context, key string) (storage.Info, error) {
	c.stats.Add(1)
	return c.Driver.Stat(ctx, key)
}

func TestReadyCheckerCachesAndDrains(t *testing.T) {
	d := &countingStat{Driver: inmemory.New()}
	locks := memory.New()
	defer locks.Close()
	reg, err := registry.New(context.Background(), registry.Config{}, registry.Deps{Storage: d, Locking: locks})
	if err != nil {
		t.Fatal(err)
	}
	ready := newReadyChecker(reg, d, locks, slog.New(slog.DiscardHandler), 200*time.Millisecond)
	srv := httptest.NewServer(ready)
	defer srv.Close()
	probe := func() (int, string) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		name      string
		before    func()
		status    int
		body      string
		storeHits int64 // total Stat calls after the step
	}{
		{"first probe reaches the store", func() {}, 200, "ok", 1},
		{"second probe is served from the cache", func() {}, 200, "ok", 1},
		{"after the ttl the store is asked again", func() { time.Sleep(250 * time.Millisecond) }, 200, "ok", 2},
		{"draining fails at once, without a probe", ready.drain, 503, "shutting down", 2},
	}
	for _, st := range steps {
		st.before()
		status, body := probe()
		if status != st.status || !strings.Contains(body, st.body) {
			t.Errorf("%s: %d %q; want %d %q", st.name, status, body, st.status, st.body)
		}
		if n := d.stats.Load(); n != st.storeHits {
			t.Errorf("%s: %d storage probes so far; want %d", st.name, n, st.storeHits)
		}
	}
}

func TestObservabilityConfig(t *testing.T) {
	tests := []struct {
		name    string
		sets    []string
		wantErr string
		check   func(*Config) bool
	}{
		{"defaults: separate listener on :9090", nil, "", func(c *Config) bool { return c.Metrics.Addr == ":9090" && !c.Metrics.MainPort }},
		{"off and main port", []string{"metrics.addr=off", "metrics.main_port=true"}, "", func(c *Config) bool { return c.Metrics.Addr == "off" && c.Metrics.MainPort }},
		{"trusted proxies", []string{"http.trusted_proxies=10.0.0.0/8,192.0.2.1"}, "", func(c *Config) bool { return len(c.HTTP.TrustedProxies) == 2 }},
		{"bad metrics addr", []string{"metrics.addr=9090"}, "metrics.addr:", nil},
		{"metrics on the public port", []string{"http.addr=:5000", "metrics.addr=:5000"}, "set metrics.main_port", nil},
		{"bad proxy", []string{"http.trusted_proxies=10.0.0.0/8,lb.internal"}, `http.trusted_proxies: not a CIDR or an IP address: "lb.internal"`, nil},
		{"negative delay", []string{"http.shutdown_delay=-1s"}, "http.shutdown_delay: must not be negative", nil},
		{"explicit empty metrics addr", []string{"metrics.addr="}, "metrics.addr: a zero or empty value is not valid here", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig("", nil, append([]string{"storage.driver=inmemory"}, tt.sets...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("config %+v %+v", cfg.Metrics, cfg.HTTP)
			}
		})
	}
}

// TestRouteInfo checks the route templates the access log and the metrics
// use, through the registry's own router.
func TestRouteInfo(t *testing.T) {
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		path                string
		template, repo, ref string
	}{
		{"/v2/", registry.RouteBase, "", ""},
		{"/v2", registry.RouteBase, "", ""},
		{"/v2/_catalog", registry.RouteCatalog, "", ""},
		{"/v2/team/app/tags/list", registry.RouteTags, "team/app", ""},
		{"/v2/team/app/manifests/v1.2", registry.RouteManifest, "team/app", "v1.2"},
		{"/v2/a/blobs/blobs/" + dgst, registry.RouteBlob, "a/blobs", dgst},
		{"/v2/app/blobs/uploads/", registry.RouteUploadStart, "app", ""},
		{"/v2/app/blobs/uploads/3f1c-secret-upload-id", registry.RouteUpload, "app", ""},
		{"/v2/app/referrers/" + dgst, registry.RouteReferrers, "app", dgst},
		{"/v2/Bad%2FName/manifests/v1", registry.RouteManifest, "", "v1"},
		{"/v2/app/manifests/x%20y", registry.RouteManifest, "app", ""},
		{"/metrics", "", "", ""},
		{"/v2/app/unknown", "", "", ""},
	}
	for _, tt := range tests {
		tmpl, repo, ref := registry.RouteInfo(tt.path)
		if tmpl != tt.template || repo != tt.repo || ref != tt.ref {
			t.Errorf("RouteInfo(%q) = %q, %q, %q; want %q, %q, %q", tt.path, tmpl, repo, ref, tt.template, tt.repo, tt.ref)
		}
	}
}
