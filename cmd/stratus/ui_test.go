package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/auth"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func TestUIConfig(t *testing.T) {
	dir := t.TempDir()
	htp := filepath.Join(dir, "htpasswd")
	os.WriteFile(htp, nil, 0o600)
	auth := "auth:\n  htpasswd:\n    path: " + htp + "\n"
	redis := "redis:\n  addrs: [\"127.0.0.1:6379\"]\n"
	tests := []struct {
		name    string
		file    string
		env     []string
		wantErr []string
		check   func(t *testing.T, c *Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *Config) {
			if !c.UI.enabled() || c.UI.SessionTTL != 12*time.Hour {
				t.Errorf("ui defaults: %+v", c.UI)
			}
		}},
		{name: "off from env", env: []string{"STRATUS_UI_ENABLED=false", "STRATUS_UI_SESSION_TTL=1h"}, check: func(t *testing.T, c *Config) {
			if c.UI.enabled() || c.UI.SessionTTL != time.Hour {
				t.Errorf("ui: %+v", c.UI)
			}
		}},
		{name: "bad values", file: "ui:\n  session_ttl: -1s\n", env: []string{"STRATUS_UI_ENABLED=maybe"},
			wantErr: []string{"ui.session_ttl", "invalid boolean"}},
		{name: "explicit zero ttl", file: "ui:\n  session_ttl: 0s\n", wantErr: []string{"ui.session_ttl: a zero or empty value"}},
		{name: "too long ttl", env: []string{"STRATUS_UI_SESSION_TTL=1000h"}, wantErr: []string{"ui.session_ttl"}},
		{name: "replicas with auth need a key", file: auth + redis, wantErr: []string{"ui.session_key_file: required"}},
		{name: "replicas with auth and a key", file: auth + redis + "ui:\n  session_key_file: /k\n"},
		{name: "replicas without the ui", file: auth + redis + "ui:\n  enabled: false\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadCase(t, tt.file, tt.env, tt.wantErr)
			if cfg != nil && tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestReadSessionKey(t *testing.T) {
	dir := t.TempDir()
	short, long := filepath.Join(dir, "short"), filepath.Join(dir, "long")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	os.WriteFile(long, []byte(strings.Repeat("k", 64)+"\n"), 0o600)
	for _, tt := range []struct {
		path    string
		wantLen int
		wantErr string
	}{
		{"", 0, ""},
		{short, 0, "want at least 32"},
		{long, 64, ""},
		{filepath.Join(dir, "missing"), 0, "no such file"},
	} {
		k, err := readSessionKey(tt.path)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(k) != tt.wantLen {
			t.Errorf("%s: %d bytes, %v", tt.path, len(k), err)
		}
	}
}

func TestWithUIRoutes(t *testing.T) {
	drv, locks := inmemory.New(), memory.New()
	reg, err := registry.New(t.Context(), registry.Config{}, registry.Deps{Storage: drv, Locking: locks})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	on, off := &Config{}, &Config{}
	on.setDefaults()
	disabled := false
	off.UI.Enabled = &disabled
	off.setDefaults()
	sec := &security{audit: auth.NewAuditor(nil)}
	ready := newReadyChecker(reg, drv, locks, logger, 0)
	tests := []struct {
		name, path, accept string
		cfg                *Config
		status             int
		location           string
	}{
		{"ui page", "/ui/", "", on, http.StatusOK, ""},
		{"browser at the root", "/", "text/html,application/xhtml+xml", on, http.StatusSeeOther, "/ui/"},
		{"client at the root", "/", "*/*", on, http.StatusNotFound, ""},
		{"ui without slash", "/ui", "", on, http.StatusSeeOther, "/ui/"},
		{"api untouched", "/v2/", "text/html", on, http.StatusOK, ""},
		{"ui off", "/ui/", "text/html", off, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := withUI(tt.cfg, reg, sec, ready, nil, logger)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.Header.Set("Accept", tt.accept)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("Location") != tt.location {
				t.Errorf("%d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tt.status, tt.location)
			}
		})
	}
}
