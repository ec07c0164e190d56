package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/ui"
)

// UIConfig is the ui section: the web UI at /ui/.
type UIConfig struct {
	// Enabled is on unless set to false.
	Enabled *bool `yaml:"enabled"`
	// SessionTTL bounds how long a login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// SessionKeyFile holds the key (at least 32 bytes) that signs session
	// cookies and CSRF tokens; without it each process draws a random
	// key, so sessions do not survive a restart or cross replicas.
	SessionKeyFile string `yaml:"session_key_file"`
}

// maxSessionTTL bounds ui.session_ttl: a stolen cookie is good for no
// longer than this.
const maxSessionTTL = 30 * 24 * time.Hour

func (c *UIConfig) setDefaults() {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = ui.DefaultSessionTTL
	}
}

func (c *UIConfig) enabled() bool { return c.Enabled == nil || *c.Enabled }

// validateUI checks the ui keys. Replicas behind one load balancer must
// verify each other's sessions, so with Redis (several replicas) and auth
// on, the key must come from a file, like auth.token.issuer_key.
func (c *Config) validateUI() error {
	u := &c.UI
	var errs []error
	if u.SessionTTL < 0 || u.SessionTTL > maxSessionTTL {
		errs = append(errs, fmt.Errorf("ui.session_ttl: %s is outside (0, %s]", u.SessionTTL, maxSessionTTL))
	}
	if u.enabled() && u.SessionKeyFile == "" && c.redisEnabled() && c.Auth.enabled() {
		errs = append(errs, errors.New("ui.session_key_file: required when redis.addrs is set and auth is on (every replica must verify the same sessions)"))
	}
	return errors.Join(errs...)
}

// readSessionKey reads ui.session_key_file; nil without one.
func readSessionKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ui.session_key_file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < ui.MinSessionKey {
		return nil, fmt.Errorf("ui.session_key_file: %s holds %d bytes; want at least %d (e.g. openssl rand -hex 32)", path, len(b), ui.MinSessionKey)
	}
	return b, nil
}

// withUI mounts the web UI in front of the registry: /ui/... is the UI,
// and a browser asking for / is sent there. API paths never change.
// proxies are the parsed http.trusted_proxies.
func withUI(cfg *Config, reg *registry.Registry, sec *security, ready *readyChecker, proxies []netip.Prefix, logger *slog.Logger) (http.Handler, error) {
	if !cfg.UI.enabled() {
		return reg, nil
	}
	key, err := readSessionKey(cfg.UI.SessionKeyFile)
	if err != nil {
		return nil, err
	}
	opts := ui.Options{
		Source: ui.NewStoreSource(reg.Content()),
		// The UI authorizes deletes itself by setting the session user;
		// the write audit still records them.
		API: sec.audit.Writes(routeOf)(reg),
		GC:  reg, Health: uiHealth{ready}, Webhooks: webhookQueue(reg),
		SessionKey: key, SessionTTL: cfg.UI.SessionTTL, Logger: logger.With("component", "ui"),
		IsHTTPS: func(r *http.Request) bool { return httpmw.ForwardedHTTPS(r, proxies) },
	}
	if sec.authz != nil {
		opts.Access = sec.authz
	}
	h, err := ui.New(opts)
	if err != nil {
		return nil, err
	}
	if key == nil && cfg.Auth.enabled() {
		logger.Info("ui: sessions are signed with a random key of this process (set ui.session_key_file to keep them across restarts)")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, ui.Prefix):
			h.ServeHTTP(w, r)
		case r.URL.Path == "/ui" || r.URL.Path == "/" && r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html"):
			http.Redirect(w, r, ui.Prefix, http.StatusSeeOther)
		default:
			reg.ServeHTTP(w, r)
		}
	}), nil
}

// uiHealth is the readiness /readyz reports.
type uiHealth struct{ c *readyChecker }

func (h uiHealth) Ready(ctx context.Context) (bool, string) {
	if h.c.draining.Load() {
		return false, "shutting down"
	}
	st := h.c.state(ctx)
	return st.status == http.StatusOK, st.body
}

// webhookQueue is the notifier's queue when webhooks are configured; nil
// (shown as "not configured") otherwise.
func webhookQueue(reg *registry.Registry) ui.WebhookQueue {
	if s, ok := reg.EventSink().(*eventSink); ok && s.n != nil {
		return s.n
	}
	return nil
}
