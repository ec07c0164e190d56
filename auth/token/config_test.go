package token

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Realm: "https://registry.test/auth/token", Service: testService, Issuer: testIssuer, JWKS: "/etc/jwks.json"}
	}
	dur := func(d time.Duration) *time.Duration { return &d }
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error; none: valid
	}{
		{"external issuer", func(*Config) {}, nil},
		{"built-in issuer only", func(c *Config) {
			*c = Config{Realm: "http://localhost:5000/auth/token", Service: "s", IssuerEnabled: true}
		}, nil},
		{"jwks url on loopback http", func(c *Config) { c.JWKSURL = "http://127.0.0.1:8080/certs" }, nil},
		{"jwks url https", func(c *Config) { c.JWKSURL = "https://idp.example/realms/r/protocol/openid-connect/certs" }, nil},
		{"zero leeway", func(c *Config) { c.Leeway = dur(0) }, nil},
		{"everything missing", func(c *Config) { *c = Config{Leeway: dur(0)} }, []string{
			"auth.token.realm: required", "auth.token.service: required", "auth.token.issuer: required", "auth.token.rootcertbundle: no trusted keys",
		}},
		{"relative realm", func(c *Config) { c.Realm = "/auth/token" }, []string{"auth.token.realm: \"/auth/token\" is not an absolute"}},
		{"quote in service", func(c *Config) { c.Service = `a"b` }, []string{"auth.token.service: must not contain quotes"}},
		{"jwks url plain http", func(c *Config) { c.JWKSURL = "http://idp.example/certs" }, []string{"auth.token.jwks_url: ", "plain http"}},
		{"jwks url ftp", func(c *Config) { c.JWKSURL = "ftp://idp.example/certs" }, []string{"auth.token.jwks_url: ", "want an https"}},
		{"jwks refresh below min", func(c *Config) {
			c.JWKSURL = "https://idp/certs"
			c.JWKSMinRefresh, c.JWKSRefresh = time.Minute, time.Second
		}, []string{"auth.token.jwks_refresh: must be at least jwks_min_refresh"}},
		{"jwks min refresh too small", func(c *Config) {
			c.JWKSURL = "https://idp/certs"
			c.JWKSMinRefresh = time.Millisecond
		}, []string{"auth.token.jwks_min_refresh: must be at least 1s"}},
		{"leeway over 60s", func(c *Config) { c.Leeway = dur(2 * time.Minute) }, []string{"auth.token.leeway: must be between 0s and 1m0s"}},
		{"negative leeway", func(c *Config) { c.Leeway = dur(-time.Second) }, []string{"auth.token.leeway"}},
		{"issuer key without issuer", func(c *Config) { c.IssuerKey = "/k.pem"; c.IssuerCertificate = "/c.pem" }, []string{
			"auth.token.issuer_key: set without issuer_enabled", "auth.token.issuer_certificate: set without issuer_enabled",
		}},
		{"jwks refresh without jwks_url", func(c *Config) { c.JWKSMinRefresh = time.Minute }, []string{"auth.token.jwks_refresh: jwks_refresh and jwks_min_refresh apply only with jwks_url"}},
		{"ttl without issuer", func(c *Config) { c.IssuerRefreshTTL = time.Hour }, []string{"auth.token.issuer_ttl: issuer_ttl and issuer_refresh_ttl apply only"}},
		{"certificate without key", func(c *Config) { c.IssuerEnabled = true; c.IssuerCertificate = "/c.pem" }, []string{"auth.token.issuer_certificate: needs issuer_key"}},
		{"ttl too long", func(c *Config) { c.IssuerEnabled = true; c.IssuerTTL = 48 * time.Hour }, []string{"auth.token.issuer_ttl: must be positive and at most 24h"}},
		{"refresh ttl shorter than ttl", func(c *Config) {
			c.IssuerEnabled = true
			c.IssuerTTL, c.IssuerRefreshTTL = time.Hour, time.Minute
		}, []string{"auth.token.issuer_refresh_ttl: must be at least issuer_ttl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			c.SetDefaults()
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Service: "svc", IssuerEnabled: true, JWKSURL: "https://idp/certs"}
	if !c.Enabled() || (&Config{}).Enabled() {
		t.Fatal("Enabled is wrong")
	}
	c.SetDefaults()
	if c.Issuer != "svc" || c.IssuerTTL != DefaultIssuerTTL || c.IssuerRefreshTTL != DefaultRefreshTTL ||
		c.JWKSRefresh != DefaultJWKSRefresh || c.JWKSMinRefresh != DefaultJWKSMinRefresh || *c.Leeway != DefaultLeeway {
		t.Fatalf("defaults: %+v", c)
	}
}
