package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/notifications"
	"github.com/stratus-registry/stratus/registry"
)

func TestNotificationsConfig(t *testing.T) {
	file := writeConfig(t, `
notifications:
  blob_push: true
  max_age: 2h
  backoff: {min: 2s, max: 1m}
  endpoints:
    - name: ci
      url: https://hooks.example.com/registry
      secret: file-secret
      headers: {Authorization: "Bearer file-token"}
      timeout: 3s
      format: cloudevents
      filters:
        actions: [push, delete]
        repositories: ["team/**"]
`)
	tests := []struct {
		name    string
		env     []string
		sets    []string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "file", check: func(t *testing.T, c *Config) {
			n := c.Notifications
			if !n.BlobPush || n.MaxAge != 2*time.Hour || n.Backoff.Min != 2*time.Second || n.ClaimIdle != notifications.DefaultClaimIdle {
				t.Errorf("notifications = %+v", n)
			}
			ep := n.Endpoints[0]
			if ep.Name != "ci" || ep.Timeout != 3*time.Second || ep.Format != notifications.FormatCloudEvents ||
				ep.DistributionMediaType != "v2" || ep.Headers["Authorization"] != "Bearer file-token" || len(ep.Filters.Actions) != 2 {
				t.Errorf("endpoint = %+v", ep)
			}
		}},
		{name: "environment", env: []string{
			"STRATUS_NOTIFICATIONS_STREAM_MAX_LENGTH=5000",
			`STRATUS_NOTIFICATIONS_ENDPOINTS=[{"name":"env","url":"http://10.0.0.1/h","secret":"env-secret"}]`,
		}, check: func(t *testing.T, c *Config) {
			n := c.Notifications
			if n.StreamMaxLength != 5000 || len(n.Endpoints) != 1 || n.Endpoints[0].Name != "env" || n.Endpoints[0].Timeout != notifications.DefaultTimeout {
				t.Errorf("notifications = %+v", n)
			}
		}},
		{name: "bad values, all reported", sets: []string{"notifications.max_age=1s", "notifications.backoff.max=1s"},
			env:     []string{`STRATUS_NOTIFICATIONS_ENDPOINTS=[{"name":"x","url":"::nope","secret":"env-secret","format":"xml"}]`},
			wantErr: []string{"notifications.max_age", "notifications.backoff.max", "notifications.endpoints[0].url", "notifications.endpoints[0].format"}},
		{name: "explicit zero", sets: []string{"notifications.claim_idle=0s"}, wantErr: []string{"notifications.claim_idle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(file, tt.env, tt.sets)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, cfg)
				return
			}
			if err == nil {
				t.Fatalf("want errors %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, secret := range []string{"file-secret", "env-secret", "file-token"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals %q", secret)
				}
			}
		})
	}
}

// TestEventSinkRendersRequests: the sink fills request, url and actor
// fields from the request, and marks GC deletions.
func TestEventSinkRendersRequests(t *testing.T) {
	var mu sync.Mutex
	var got []notifications.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env notifications.Envelope
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, env.Events...)
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := notifications.Config{Endpoints: notifications.EndpointList{{Name: "t", URL: srv.URL}}}
	n, err := notifications.New(cfg, notifications.Options{InstanceID: "i-1", SourceAddr: "h:5000"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	sink := &eventSink{n: n, actor: func(*http.Request) string { return "alice" }}
	req := httptest.NewRequest("PUT", "http://reg.example:5000/v2/a/manifests/v1", nil)
	req.Header.Set("X-Request-Id", "rid-1")
	req.Header.Set("User-Agent", "ua/1")
	sink.Emit(ctx, registry.Event{Action: registry.EventPush, Kind: registry.EventManifest, Repository: "a", Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Size: 9, Tag: "v1", Request: req})
	sink.Emit(ctx, registry.Event{Action: registry.EventDelete, Kind: registry.EventBlob, Repository: "a", Digest: digest.Digest("sha256:" + strings.Repeat("b", 64))})
	deadline := time.Now().Add(20 * time.Second)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	for count() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("got %d events", len(got))
	}
	p, gcEv := got[0], got[1]
	if p.Request.ID != "rid-1" || p.Request.UserAgent != "ua/1" || p.Request.Method != "PUT" || p.Request.Host != "reg.example:5000" ||
		p.Actor.Name != "alice" || p.Target.Length != 9 || p.Source.InstanceID != "i-1" ||
		p.Target.URL != "http://reg.example:5000/v2/a/manifests/sha256:"+strings.Repeat("a", 64) {
		t.Errorf("push event %+v", p)
	}
	if gcEv.Actor.Name != notifications.GCActor || gcEv.Request != (notifications.Request{}) || gcEv.Target.URL != "" {
		t.Errorf("gc event %+v", gcEv)
	}
}
