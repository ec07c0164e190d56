package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stratus-registry/stratus/auth"
	"github.com/stratus-registry/stratus/auth/htpasswd"
	"github.com/stratus-registry/stratus/auth/policy"
	"github.com/stratus-registry/stratus/auth/token"
	"github.com/stratus-registry/stratus/registry"
)

// AuthConfig is the auth section. Auth is on when a credential source is
// configured (auth.htpasswd.path today; auth.token is the second source).
// With auth on, anonymous callers get only what auth.access grants them.
type AuthConfig struct {
	Htpasswd HtpasswdConfig `yaml:"htpasswd"`
	// Access is the policy; it is reloaded on SIGHUP and when the
	// configuration file changes, without a restart.
	Access policy.Config `yaml:"access"`
	// Token is Bearer-token auth (token.go): with it, requests carry
	// tokens from auth.token.realm instead of passwords.
	Token token.Config `yaml:"token"`
}

// HtpasswdConfig is auth.htpasswd.
type HtpasswdConfig struct {
	// Path is the htpasswd file (bcrypt entries only), re-read when it
	// changes.
	Path string `yaml:"path"`
	// Realm is the Basic challenge's realm.
	Realm string `yaml:"realm"`
}

const defaultRealm = "Stratus"

func (c *AuthConfig) setDefaults() {
	if c.Htpasswd.Path != "" && c.Htpasswd.Realm == "" {
		c.Htpasswd.Realm = defaultRealm
	}
	if c.Token.Enabled() {
		c.Token.SetDefaults()
	}
}

// enabled reports whether requests are authenticated at all.
func (c *AuthConfig) enabled() bool { return c.Htpasswd.Path != "" || c.Token.Enabled() }

func (c *AuthConfig) validate() error {
	var errs []error
	if c.Htpasswd.Path == "" && c.Htpasswd.Realm != "" {
		errs = append(errs, errors.New("auth.htpasswd.realm: set auth.htpasswd.path too, or leave the realm out"))
	}
	if !c.enabled() && (len(c.Access.Rules) > 0 || len(c.Access.Groups) > 0) {
		errs = append(errs, errors.New("auth.access: a policy needs credentials to check; set auth.htpasswd.path (or auth.token)"))
	}
	errs = append(errs, c.Access.Validate("auth.access"), c.validateToken())
	return errors.Join(errs...)
}

// security is the auth wiring of one serve: the authorizer (nil when auth
// is off) and the audit log, which records writes with or without auth.
type security struct {
	authz *auth.Authorizer
	audit *auth.Auditor
	// tokenEndpoint is the built-in token issuer; nil without one.
	tokenEndpoint http.Handler
}

// openSecurity loads the htpasswd file and the policy; any problem (a
// missing file, a non-bcrypt line) stops startup.
func openSecurity(ctx context.Context, cfg *Config, logger *slog.Logger) (*security, error) {
	s := &security{audit: auth.NewAuditor(logger)}
	tokens, err := openTokenAuth(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if !cfg.Auth.enabled() {
		return s, nil
	}
	p, err := policy.New(cfg.Auth.Access)
	if err != nil {
		return nil, err
	}
	opts := auth.Options{Realm: cfg.Auth.Htpasswd.Realm, Policy: p, Auditor: s.audit, Logger: logger.With("component", "auth")}
	tokens.options(&opts, &cfg.Auth.Token)
	if cfg.Auth.Htpasswd.Path != "" {
		f, err := htpasswd.Open(cfg.Auth.Htpasswd.Path, logger.With("component", "htpasswd"))
		if err != nil {
			return nil, fmt.Errorf("auth.htpasswd.path: %w", err)
		}
		opts.Passwords = f
		logger.Info("htpasswd authentication on", "file", cfg.Auth.Htpasswd.Path, "users", f.Users(), "rules", len(cfg.Auth.Access.Rules))
	}
	if s.authz, err = auth.New(opts); err != nil {
		return nil, err
	}
	s.tokenEndpoint = tokens.endpoint(s.authz, logger)
	return s, nil
}

// authorizer is what the registry asks; nil (allow all) without auth.
func (s *security) authorizer() registry.Authorizer {
	if s.authz == nil {
		return nil
	}
	return s.authz
}

// wrap puts authentication and the write audit in front of the registry.
func (s *security) wrap(h http.Handler) http.Handler {
	h = s.audit.Writes(routeOf)(h)
	if s.authz != nil {
		h = s.authz.Middleware(h)
	}
	return mountTokenEndpoint(h, s.tokenEndpoint)
}

// policyReloadEvery is how often the configuration file is checked for a
// policy change: a stat per second is free, and the operator sees an edit
// applied within a second without sending SIGHUP.
const policyReloadEvery = time.Second

// watchPolicy reloads auth.access on SIGHUP and when the configuration
// file changes, until ctx is done. The whole configuration is loaded and
// validated again, but only the policy is applied; an invalid file is
// logged and the running policy stays.
func (s *security) watchPolicy(ctx context.Context, cfg *Config, logger *slog.Logger) {
	if s.authz == nil || cfg.reload == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(policyReloadEvery)
	defer tick.Stop()
	last, _ := os.Stat(cfg.path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last, _ = os.Stat(cfg.path)
			s.reloadPolicy(cfg, logger, "SIGHUP")
		case <-tick.C:
			st, err := os.Stat(cfg.path)
			if err != nil || (last != nil && os.SameFile(st, last) && st.Size() == last.Size() && st.ModTime().Equal(last.ModTime())) {
				continue
			}
			last = st
			s.reloadPolicy(cfg, logger, "file changed")
		}
	}
}

func (s *security) reloadPolicy(cfg *Config, logger *slog.Logger, why string) {
	next, err := cfg.reload()
	if err == nil {
		var p *policy.Policy
		if p, err = policy.New(next.Auth.Access); err == nil {
			s.authz.SetPolicy(p)
			logger.Info("access policy reloaded", "trigger", why, "rules", len(next.Auth.Access.Rules), "groups", len(next.Auth.Access.Groups))
			return
		}
	}
	logger.Error("access policy NOT reloaded: the configuration is invalid; the previous policy stays in force", "trigger", why, "err", err)
}
