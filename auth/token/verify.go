// Package token implements Bearer-token auth per the Docker registry token
// specification: a Verifier for tokens from any trusted issuer (x5c chains
// to a root bundle, JWKS files and URLs), and a built-in Issuer with its
// token endpoint (GET and OAuth2 POST /auth/token) for htpasswd users.
package token

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stratus-registry/stratus/auth/scope"
)

// maxTokenSize bounds the work spent on one Authorization header: a few
// certificates of x5c plus claims fit well within it.
const maxTokenSize = 32 << 10

// Token type markers. Refresh tokens carry both, so that a refresh token
// presented as an access token is refused whichever one a check reads.
const (
	refreshTyp      = "stratus-refresh+jwt"
	tokenUseRefresh = "refresh"
)

// claims is the payload of an access token.
type claims struct {
	jwt.RegisteredClaims
	Access   []scope.Scope `json:"access,omitempty"`
	TokenUse string        `json:"token_use,omitempty"`
}

// Verifier checks Bearer tokens. It is safe for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	static *keySet        // rootcertbundle, jwks file, the built-in issuer
	remote *remoteKeys    // jwks_url; nil without one
	roots  *x509.CertPool // rootcertbundle; nil without one
	now    func() time.Time
}

// VerifierOptions are the Verifier's dependencies beyond its Config.
type VerifierOptions struct {
	Logger *slog.Logger
	// Trust adds keys to trust, such as the built-in issuer's.
	Trust []crypto.PublicKey
	// HTTPClient fetches jwks_url; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewVerifier loads the trusted keys cfg names. A jwks_url that cannot be
// fetched now is not fatal (the IdP may start after the registry): it is
// logged, and fetched again on the next unknown kid or by Run.
func NewVerifier(ctx context.Context, cfg Config, opts VerifierOptions) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Service == "" {
		// The parser would skip an empty issuer check: refuse to build one.
		return nil, fmt.Errorf("%sissuer and %sservice are required", prefix, prefix)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	v := &Verifier{static: newKeySet(), now: now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(validMethods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Service),
		jwt.WithLeeway(cfg.leeway()),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	)
	var errs []error
	for i, pub := range opts.Trust {
		if err := v.static.add("", trustedKey{pub: pub}); err != nil {
			errs = append(errs, fmt.Errorf("trusted key %d: %w", i, err))
		}
	}
	if cfg.RootCertBundle != "" {
		errs = append(errs, v.loadRoots(cfg.RootCertBundle))
	}
	if cfg.JWKS != "" {
		errs = append(errs, v.loadJWKSFile(cfg.JWKS, log))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.JWKSURL != "" {
		v.remote = newRemoteKeys(&cfg, opts.HTTPClient, now, log)
		if err := v.remote.refresh(ctx, true); err != nil {
			log.Error("jwks_url cannot be fetched; tokens signed by its keys are refused until it can", "err", err)
		}
	}
	return v, nil
}

func (v *Verifier) loadRoots(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%srootcertbundle: %w", prefix, err)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return fmt.Errorf("%srootcertbundle %s: %w", prefix, path, err)
	}
	v.roots = x509.NewCertPool()
	for i, c := range certs {
		v.roots.AddCert(c)
		if err := v.static.addCertificate(c); err != nil {
			return fmt.Errorf("%srootcertbundle %s: certificate %d (%s): %w", prefix, path, i+1, c.Subject, err)
		}
	}
	return nil
}

func (v *Verifier) loadJWKSFile(path string, log *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%sjwks: %w", prefix, err)
	}
	if len(data) > maxJWKSSize {
		return fmt.Errorf("%sjwks %s: larger than %d bytes", prefix, path, maxJWKSSize)
	}
	set, skipped, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("%sjwks %s: %w", prefix, path, err)
	}
	for _, s := range skipped {
		log.Warn("jwks file key skipped", "file", path, "reason", s)
	}
	for kid, k := range set.byKID {
		v.static.byKID[kid] = k
	}
	for tp, k := range set.byThumb {
		v.static.byThumb[tp] = k
	}
	return nil
}

// Run keeps the jwks_url key set fresh until ctx is done; without a
// jwks_url it returns at once.
func (v *Verifier) Run(ctx context.Context) {
	if v.remote != nil {
		v.remote.run(ctx)
	}
}

// Verify checks raw and returns its subject ("" for an anonymous token)
// and its access claim as given. Every error wraps ErrInvalidToken and
// one of the more precise sentinels.
func (v *Verifier) Verify(ctx context.Context, raw string) (string, []scope.Scope, error) {
	if len(raw) > maxTokenSize {
		return "", nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, maxTokenSize)
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		return v.signingKey(ctx, t)
	})
	if err != nil {
		return "", nil, classify(tok, err)
	}
	if typ, _ := tok.Header["typ"].(string); strings.EqualFold(typ, refreshTyp) || c.TokenUse == tokenUseRefresh {
		return "", nil, fmt.Errorf("%w: %w: a refresh token is not an access token", ErrInvalidToken, ErrWrongTokenType)
	}
	for i, a := range c.Access {
		if a.Type == "" || a.Name == "" {
			return "", nil, fmt.Errorf("%w: %w: access entry %d has no type or name", ErrInvalidToken, ErrMalformedClaims, i)
		}
	}
	return c.Subject, c.Access, nil
}

// classify turns a parser error into one of this package's sentinels.
func classify(tok *jwt.Token, err error) error {
	if tok != nil {
		if alg, _ := tok.Header["alg"].(string); !slices.Contains(validMethods, alg) {
			return fmt.Errorf("%w: %w: %q", ErrInvalidToken, ErrAlgorithm, alg)
		}
	}
	for _, m := range []struct{ from, to error }{
		{jwt.ErrTokenExpired, ErrExpired},
		{jwt.ErrTokenNotValidYet, ErrNotYetValid},
		{jwt.ErrTokenInvalidAudience, ErrWrongAudience},
		{jwt.ErrTokenInvalidIssuer, ErrWrongIssuer},
		{jwt.ErrTokenSignatureInvalid, ErrBadSignature},
		{jwt.ErrTokenRequiredClaimMissing, ErrMalformedClaims},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %w", ErrInvalidToken, m.to)
		}
	}
	// Key lookup errors (ErrUntrustedKey, ErrCertificate) and malformed
	// tokens keep their own error.
	return fmt.Errorf("%w: %w", ErrInvalidToken, err)
}
