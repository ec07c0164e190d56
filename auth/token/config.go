package token

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is the `auth.token` section: Bearer-token auth per the Docker
// registry token specification, with tokens from an external issuer, from
// the built-in issuer (issuer_enabled), or both.
type Config struct {
	// Realm is the token endpoint clients are sent to by the challenge:
	// an absolute URL they can reach ("https://registry.example/auth/token"
	// for the built-in issuer).
	Realm string `yaml:"realm"`
	// Service is this registry's name in the challenge; a token's aud must
	// contain it.
	Service string `yaml:"service"`
	// Issuer is the iss every token must carry. With issuer_enabled it
	// defaults to service.
	Issuer string `yaml:"issuer"`
	// RootCertBundle is a PEM file of certificates: a token whose x5c
	// chain verifies to one of them is trusted, and their public keys are
	// trusted keys too.
	RootCertBundle string `yaml:"rootcertbundle"`
	// JWKS is a JSON Web Key Set file of trusted keys.
	JWKS string `yaml:"jwks"`
	// JWKSURL is an https:// JWKS endpoint (an OIDC provider's jwks_uri);
	// plain http is accepted only for loopback hosts.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is the longest a fetched key set is used before it is
	// fetched again; a shorter Cache-Control max-age is honoured down to
	// JWKSMinRefresh.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// JWKSMinRefresh is the shortest time between two fetches, including
	// those caused by tokens naming an unknown kid.
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh"`
	// Leeway is the clock skew allowed on exp and nbf, at most 60s. A
	// pointer so that an explicit 0 means none.
	Leeway *time.Duration `yaml:"leeway"`

	// IssuerEnabled serves the built-in token endpoint at /auth/token,
	// which signs tokens for htpasswd users with IssuerKey.
	IssuerEnabled bool `yaml:"issuer_enabled"`
	// IssuerKey is the PEM private key (EC P-256, RSA >= 2048 bits or
	// Ed25519) the built-in issuer signs with. Empty means a key generated
	// at startup: then no other replica verifies this one's tokens and a
	// restart invalidates them all.
	IssuerKey string `yaml:"issuer_key"`
	// IssuerCertificate is an optional PEM certificate (chain) for
	// IssuerKey, sent as x5c.
	IssuerCertificate string `yaml:"issuer_certificate"`
	// IssuerTTL is the lifetime of an issued access token.
	IssuerTTL time.Duration `yaml:"issuer_ttl"`
	// IssuerRefreshTTL is the lifetime of a refresh token
	// (offline_token=true, access_type=offline).
	IssuerRefreshTTL time.Duration `yaml:"issuer_refresh_ttl"`
}

// Defaults and bounds.
const (
	DefaultJWKSRefresh    = 10 * time.Minute
	DefaultJWKSMinRefresh = 30 * time.Second
	DefaultLeeway         = 60 * time.Second
	MaxLeeway             = 60 * time.Second
	DefaultIssuerTTL      = 5 * time.Minute
	DefaultRefreshTTL     = 7 * 24 * time.Hour

	minJWKSRefresh = time.Second
	maxIssuerTTL   = 24 * time.Hour
	maxRefreshTTL  = 90 * 24 * time.Hour
	prefix         = "auth.token."
)

// Enabled reports whether the section is configured at all.
func (c *Config) Enabled() bool {
	return c.Realm != "" || c.Service != "" || c.Issuer != "" || c.RootCertBundle != "" ||
		c.JWKS != "" || c.JWKSURL != "" || c.IssuerEnabled
}

// SetDefaults fills the keys left unset; call it only when Enabled.
func (c *Config) SetDefaults() {
	if c.JWKSURL != "" {
		c.JWKSRefresh = cmp.Or(c.JWKSRefresh, DefaultJWKSRefresh)
		c.JWKSMinRefresh = cmp.Or(c.JWKSMinRefresh, DefaultJWKSMinRefresh)
	}
	if c.Leeway == nil {
		l := DefaultLeeway
		c.Leeway = &l
	}
	if c.IssuerEnabled {
		if c.Issuer == "" {
			c.Issuer = c.Service
		}
		c.IssuerTTL = cmp.Or(c.IssuerTTL, DefaultIssuerTTL)
		c.IssuerRefreshTTL = cmp.Or(c.IssuerRefreshTTL, DefaultRefreshTTL)
	}
}

// leeway is the configured clock skew; SetDefaults fills it.
func (c *Config) leeway() time.Duration {
	if c.Leeway == nil {
		return DefaultLeeway
	}
	return *c.Leeway
}

// Validate reports every problem at once, each with its key path. It
// expects SetDefaults to have run.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.Realm); c.Realm == "" {
		add("realm", "required")
	} else if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("realm", "%q is not an absolute http:// or https:// URL", c.Realm)
	}
	if c.Service == "" {
		add("service", "required")
	} else if strings.ContainsAny(c.Service, "\"\\") {
		add("service", "must not contain quotes or backslashes (it is quoted in the challenge)")
	}
	if c.Issuer == "" {
		add("issuer", "required")
	}
	if c.RootCertBundle == "" && c.JWKS == "" && c.JWKSURL == "" && !c.IssuerEnabled {
		add("rootcertbundle", "no trusted keys: set rootcertbundle, jwks or jwks_url, or issuer_enabled")
	}
	if c.JWKSURL == "" && (c.JWKSRefresh != 0 || c.JWKSMinRefresh != 0) {
		add("jwks_refresh", "jwks_refresh and jwks_min_refresh apply only with jwks_url")
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL); err != nil {
			add("jwks_url", "%v", err)
		}
		if c.JWKSMinRefresh < minJWKSRefresh {
			add("jwks_min_refresh", "must be at least %s", minJWKSRefresh)
		}
		if c.JWKSRefresh < c.JWKSMinRefresh {
			add("jwks_refresh", "must be at least jwks_min_refresh (%s)", c.JWKSMinRefresh)
		}
	}
	if l := c.leeway(); l < 0 || l > MaxLeeway {
		add("leeway", "must be between 0s and %s", MaxLeeway)
	}
	errs = append(errs, c.validateIssuer())
	return errors.Join(errs...)
}

func (c *Config) validateIssuer() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if !c.IssuerEnabled {
		if c.IssuerKey != "" {
			add("issuer_key", "set without issuer_enabled: true")
		}
		if c.IssuerCertificate != "" {
			add("issuer_certificate", "set without issuer_enabled: true")
		}
		if c.IssuerTTL != 0 || c.IssuerRefreshTTL != 0 {
			add("issuer_ttl", "issuer_ttl and issuer_refresh_ttl apply only with issuer_enabled: true")
		}
		return errors.Join(errs...)
	}
	if c.IssuerCertificate != "" && c.IssuerKey == "" {
		add("issuer_certificate", "needs issuer_key (the certificate's private key)")
	}
	if c.IssuerTTL <= 0 || c.IssuerTTL > maxIssuerTTL {
		add("issuer_ttl", "must be positive and at most %s", maxIssuerTTL)
	}
	if c.IssuerRefreshTTL < c.IssuerTTL || c.IssuerRefreshTTL > maxRefreshTTL {
		add("issuer_refresh_ttl", "must be at least issuer_ttl and at most %s", maxRefreshTTL)
	}
	return errors.Join(errs...)
}

// checkJWKSURL admits https, and http only to a loopback host: keys fetched
// over plain http to anywhere else could be swapped by anyone on the path,
// and whoever controls the keys controls every repository.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only for loopback hosts; use https", raw)
	}
	return fmt.Errorf("%q: want an https:// URL", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
