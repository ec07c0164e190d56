package main

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"net/http"

	"github.com/stratus-registry/stratus/auth"
	"github.com/stratus-registry/stratus/auth/token"
)

// tokenPath is where the built-in token endpoint is served; the realm of
// a built-in setup names it ("https://registry.example/auth/token").
const tokenPath = "/auth/token"

// tokenAuth is auth.token at run time: the verifier the authorizer asks,
// and with issuer_enabled the issuer behind /auth/token.
type tokenAuth struct {
	verifier *token.Verifier
	issuer   *token.Issuer // nil unless auth.token.issuer_enabled
}

// openTokenAuth builds the issuer first (the verifier trusts its key, so
// built-in mode needs no key configuration beyond issuer_key), then the
// verifier, and keeps a jwks_url fresh until ctx is done. It returns nil
// without auth.token.
func openTokenAuth(ctx context.Context, cfg *Config, logger *slog.Logger) (*tokenAuth, error) {
	tc := cfg.Auth.Token
	if !tc.Enabled() {
		return nil, nil
	}
	log := logger.With("component", "token")
	ta := &tokenAuth{}
	var trust []crypto.PublicKey
	if tc.IssuerEnabled {
		iss, err := token.NewIssuer(tc, log, nil)
		if err != nil {
			return nil, err
		}
		ta.issuer = iss
		trust = append(trust, iss.PublicKey())
	}
	v, err := token.NewVerifier(ctx, tc, token.VerifierOptions{Logger: log, Trust: trust})
	if err != nil {
		return nil, err
	}
	ta.verifier = v
	go v.Run(ctx)
	log.Info("token authentication on", "realm", tc.Realm, "service", tc.Service, "issuer", tc.Issuer,
		"builtin_issuer", tc.IssuerEnabled, "jwks_url", tc.JWKSURL, "jwks", tc.JWKS, "rootcertbundle", tc.RootCertBundle)
	return ta, nil
}

// options points the authorizer at the verifier and the token realm; with
// no auth.token they stay as they are (Basic).
func (ta *tokenAuth) options(opts *auth.Options, cfg *token.Config) {
	if ta == nil {
		return
	}
	opts.Tokens, opts.Realm, opts.Service = ta.verifier, cfg.Realm, cfg.Service
}

// endpoint is the built-in token endpoint, checking passwords and asking
// the policy through authz; nil unless issuer_enabled.
func (ta *tokenAuth) endpoint(authz *auth.Authorizer, logger *slog.Logger) http.Handler {
	if ta == nil || ta.issuer == nil || authz == nil {
		return nil
	}
	return token.NewHandler(ta.issuer, authz, authz, logger.With("component", "token"))
}

// mountTokenEndpoint serves ep at /auth/token and everything else with h.
// It sits outside the authorizer: the endpoint checks credentials itself.
func mountTokenEndpoint(h, ep http.Handler) http.Handler {
	if ep == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			ep.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// validateToken checks auth.token and what it needs of the rest of auth.
func (c *AuthConfig) validateToken() error {
	tc := &c.Token
	if !tc.Enabled() {
		return nil
	}
	errs := []error{tc.Validate()}
	if tc.IssuerEnabled && c.Htpasswd.Path == "" {
		errs = append(errs, errors.New("auth.token.issuer_enabled: needs auth.htpasswd.path (the users it issues tokens to)"))
	}
	if !tc.IssuerEnabled && c.Htpasswd.Path != "" {
		errs = append(errs, errors.New("auth.htpasswd.path: with auth.token, passwords are checked only by the built-in issuer; set auth.token.issuer_enabled: true"))
	}
	return errors.Join(errs...)
}

// validateTokenReplicas: with Redis (several replicas) the built-in issuer
// needs a shared key, or each replica would sign with one of its own and
// refuse every other replica's tokens.
func (c *Config) validateTokenReplicas() error {
	tc := &c.Auth.Token
	if tc.IssuerEnabled && tc.IssuerKey == "" && c.redisEnabled() {
		return errors.New("auth.token.issuer_key: required when redis.addrs is set (every replica must sign with the same key)")
	}
	return nil
}
