// Package proxycache serves pull-through mirror prefixes: a pull under a
// prefix that is missing locally is fetched from the prefix's upstream
// registry, streamed to the client while it is stored, and served locally
// afterwards. It plugs into the registry as its registry.Mirror.
package proxycache

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stratus-registry/stratus/registry/content"
)

// Config is the proxy section: the upstreams and how pulls wait for each
// other.
type Config struct {
	Upstreams Upstreams `yaml:"upstreams"`
	// LeaseWait bounds how long a pull waits for another replica that is
	// fetching the same blob before it answers 503 with Retry-After.
	LeaseWait time.Duration `yaml:"lease_wait"`
	// FetchTimeout bounds one upstream blob fetch. The fetch outlives the
	// client that started it, so the blob is stored for the others.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
}

// Upstreams is the list of mirrored registries. As an environment variable
// (STRATUS_PROXY_UPSTREAMS) it is a JSON or YAML flow list.
type Upstreams []Upstream

// UnmarshalText reads the list from one string (the environment); YAML
// files give it as a sequence.
func (u *Upstreams) UnmarshalText(b []byte) error {
	var list []Upstream
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		return fmt.Errorf("want a list of upstreams, e.g. [{prefix: hub, url: https://registry-1.docker.io}]: %w", err)
	}
	*u = list
	return nil
}

// Upstream is one mirrored registry under one repository prefix.
type Upstream struct {
	// Prefix is the first name component of the mirror's repositories.
	Prefix string `yaml:"prefix"`
	// URL is the upstream's base (scheme and host, no path).
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// PasswordFile is read at start instead of Password.
	PasswordFile string `yaml:"password_file"`
	// TTL is how long a cached tag is served before it is checked again
	// upstream (with a HEAD).
	TTL time.Duration `yaml:"ttl"`
	// DockerHub adds library/ to one-component names. Implied by a Docker
	// Hub host.
	DockerHub bool `yaml:"docker_hub"`
	// Root maps names under no prefix to this upstream (docker's
	// registry-mirrors sends docker.io names without one).
	Root bool `yaml:"root"`
}

// Secret is a credential: it prints and logs as "[redacted]".
type Secret string

func (Secret) String() string { return "[redacted]" }

// LogValue keeps the secret out of structured logs.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// DefaultTTL is the tag TTL of an upstream that sets none.
const DefaultTTL = 5 * time.Minute

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.LeaseWait == 0 {
		c.LeaseWait = 60 * time.Second
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = 30 * time.Minute
	}
	for i := range c.Upstreams {
		if c.Upstreams[i].TTL == 0 {
			c.Upstreams[i].TTL = DefaultTTL
		}
	}
}

// Validate reports every problem at once, each with its key path under
// path (e.g. "proxy").
func (c *Config) Validate(path string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	if c.LeaseWait < 0 {
		bad("lease_wait", "must not be negative")
	}
	if c.FetchTimeout < 0 {
		bad("fetch_timeout", "must not be negative")
	}
	prefixes := map[string]int{}
	hosts := map[string]int{}
	root := -1
	for i, u := range c.Upstreams {
		at := func(k string) string { return fmt.Sprintf("upstreams[%d].%s", i, k) }
		switch {
		case u.Prefix == "":
			bad(at("prefix"), "is required")
		case strings.Contains(u.Prefix, "/") || !content.ValidName(u.Prefix):
			bad(at("prefix"), "%q is not one repository-name component ([a-z0-9] joined by '.', '_', '__' or '-')", u.Prefix)
		default:
			if j, dup := prefixes[u.Prefix]; dup {
				bad(at("prefix"), "%q is already the prefix of upstreams[%d]", u.Prefix, j)
			}
			prefixes[u.Prefix] = i
		}
		if host, err := parseUpstreamURL(u.URL); err != nil {
			bad(at("url"), "%v", err)
		} else {
			key := hostKey(host)
			if j, dup := hosts[key]; dup {
				bad(at("url"), "host %s is already mirrored by upstreams[%d]; ?ns= could not tell them apart", host, j)
			}
			hosts[key] = i
		}
		if u.Password != "" && u.PasswordFile != "" {
			bad(at("password_file"), "set password or password_file, not both")
		}
		if (u.Password != "" || u.PasswordFile != "") && u.Username == "" {
			bad(at("username"), "is required with a password")
		}
		if u.Username != "" && u.Password == "" && u.PasswordFile == "" {
			bad(at("password"), "is required with a username (or set password_file)")
		}
		if u.TTL < 0 {
			bad(at("ttl"), "must not be negative")
		}
		if u.Root {
			if root >= 0 {
				bad(at("root"), "upstreams[%d] is already the root upstream", root)
			} else {
				root = i
			}
		}
	}
	return errors.Join(errs...)
}

// parseUpstreamURL checks an upstream URL and returns its host.
func parseUpstreamURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: the scheme must be http or https", s)
	case u.Host == "":
		return "", fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return "", fmt.Errorf("URL must not carry credentials; use username and password")
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q: give only scheme and host (the registry API lives at /v2/)", s)
	}
	return u.Host, nil
}

// password is the upstream's password, from the file if one is named.
func (u Upstream) password() (string, error) {
	if u.PasswordFile == "" {
		return string(u.Password), nil
	}
	b, err := os.ReadFile(u.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("upstream %s: reading password_file: %w", u.Prefix, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
