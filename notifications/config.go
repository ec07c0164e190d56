package notifications

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"
)

// Config is the `notifications:` section of the configuration.
type Config struct {
	// Endpoints receive the events; none turns notifications off.
	Endpoints EndpointList `yaml:"endpoints"`
	// BlobPush also emits an event for every blob upload; off by default,
	// because an image push then sends one event per layer.
	BlobPush bool `yaml:"blob_push"`
	// MaxAge is how long an undelivered event is retried before it is
	// dropped (and counted).
	MaxAge time.Duration `yaml:"max_age"`
	// StreamMaxLength bounds the undelivered events kept per endpoint (the
	// Redis Stream, or the in-process queue); the oldest go first, counted.
	StreamMaxLength int64 `yaml:"stream_max_length"`
	// Backoff bounds the wait between two attempts of one delivery.
	Backoff BackoffConfig `yaml:"backoff"`
	// ClaimIdle is how long an entry read by a replica may go untouched
	// before another replica claims it (XAUTOCLAIM): a replica that died
	// with events in flight has them delivered by another after this.
	ClaimIdle time.Duration `yaml:"claim_idle"`
}

// BackoffConfig is the `notifications.backoff:` section.
type BackoffConfig struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

// EndpointList is the list of endpoints. It also parses from one
// environment variable or --set value holding a YAML or JSON list
// (STRATUS_NOTIFICATIONS_ENDPOINTS='[{"name":"ci","url":"https://..."}]').
type EndpointList []Endpoint

// UnmarshalText parses a YAML (or JSON) list of endpoints.
func (l *EndpointList) UnmarshalText(b []byte) error {
	var out []Endpoint
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return fmt.Errorf("want a YAML or JSON list of endpoints: %w", err)
	}
	*l = out
	return nil
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	// Name labels the endpoint's metrics and names its queue; it must stay
	// stable across restarts, or the queued events of the old name are
	// left behind.
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Headers are added to every delivery (e.g. Authorization).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `yaml:"timeout"`
	// Secret keys the HMAC-SHA256 signature; empty sends no signature.
	Secret string `yaml:"secret"`
	// Format is "distribution" (registry:2 envelope) or "cloudevents".
	Format Format `yaml:"format"`
	// DistributionMediaType selects the envelope's Content-Type: "v2"
	// (application/vnd.docker.distribution.events.v2+json) or "v1".
	DistributionMediaType string  `yaml:"distribution_media_type"`
	Filters               Filters `yaml:"filters"`
}

// LogValue keeps the secret and the header values out of every log line,
// and the URL's password too.
func (e Endpoint) LogValue() slog.Value {
	u := e.URL
	if p, err := url.Parse(e.URL); err == nil {
		u = p.Redacted()
	}
	return slog.GroupValue(slog.String("name", e.Name), slog.String("url", u), slog.String("format", string(e.Format)))
}

// Format is the body shape of a delivery.
type Format string

const (
	FormatDistribution Format = "distribution"
	FormatCloudEvents  Format = "cloudevents"
)

// Filters select the events an endpoint receives; an empty list matches
// everything.
type Filters struct {
	// Actions: push, pull, delete, mount.
	Actions []Action `yaml:"actions" json:"actions,omitempty"`
	// Repositories are doublestar globs ("team/**", "*/app").
	Repositories []string `yaml:"repositories" json:"repositories,omitempty"`
	// MediaTypes are globs over the target's media type; events that carry
	// none (deletions, blob events) pass.
	MediaTypes []string `yaml:"media_types" json:"media_types,omitempty"`
}

// Defaults applied by SetDefaults.
const (
	DefaultMaxAge          = 24 * time.Hour
	DefaultStreamMaxLength = 100000
	DefaultBackoffMin      = time.Second
	DefaultBackoffMax      = 5 * time.Minute
	DefaultClaimIdle       = time.Minute
	DefaultTimeout         = 5 * time.Second
)

// SetDefaults fills the keys left unset.
func (c *Config) SetDefaults() {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.StreamMaxLength == 0 {
		c.StreamMaxLength = DefaultStreamMaxLength
	}
	if c.Backoff.Min == 0 {
		c.Backoff.Min = DefaultBackoffMin
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = DefaultBackoffMax
	}
	if c.ClaimIdle == 0 {
		c.ClaimIdle = DefaultClaimIdle
	}
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		if e.Timeout == 0 {
			e.Timeout = DefaultTimeout
		}
		if e.Format == "" {
			e.Format = FormatDistribution
		}
		if e.DistributionMediaType == "" {
			e.DistributionMediaType = "v2"
		}
	}
}

// maxNameLen bounds an endpoint name (a metric label and a Redis key part).
const maxNameLen = 64

// reservedHeaders are set by every delivery and cannot be overridden.
var reservedHeaders = []string{"content-type", "content-length", "host", strings.ToLower(SignatureHeader), strings.ToLower(TimestampHeader), strings.ToLower(EventIDHeader)}

// Validate reports every problem at once, each with its key path under
// prefix ("notifications"). Secrets and header values never appear in
// the messages.
func (c *Config) Validate(prefix string) error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	if c.MaxAge < time.Minute {
		add("max_age", "%s is shorter than 1m", c.MaxAge)
	}
	if c.StreamMaxLength < 100 || c.StreamMaxLength > 100_000_000 {
		add("stream_max_length", "%d is outside 100..100000000", c.StreamMaxLength)
	}
	if c.Backoff.Min < 10*time.Millisecond {
		add("backoff.min", "%s is shorter than 10ms", c.Backoff.Min)
	}
	if c.Backoff.Max < c.Backoff.Min {
		add("backoff.max", "%s is shorter than backoff.min (%s)", c.Backoff.Max, c.Backoff.Min)
	}
	if c.ClaimIdle < time.Second {
		add("claim_idle", "%s is shorter than 1s", c.ClaimIdle)
	}
	names := map[string]int{}
	for i, e := range c.Endpoints {
		key := fmt.Sprintf("endpoints[%d]", i)
		if j, dup := names[e.Name]; dup && e.Name != "" {
			add(key+".name", "%q is also the name of endpoints[%d]", e.Name, j)
		}
		names[e.Name] = i
		for _, err := range e.validate() {
			add(key+"."+err.key, "%s", err.msg)
		}
	}
	return errors.Join(errs...)
}

type fieldError struct{ key, msg string }

func (e *Endpoint) validate() []fieldError {
	var errs []fieldError
	add := func(key, format string, args ...any) {
		errs = append(errs, fieldError{key, fmt.Sprintf(format, args...)})
	}
	if !validName(e.Name) {
		add("name", "%q is not 1..%d characters of [a-z0-9_-]", e.Name, maxNameLen)
	}
	if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url", "want an absolute http or https URL")
	}
	for name, value := range e.Headers {
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			add("headers", "%q is not a valid header name", name)
		case containsFold(reservedHeaders, name):
			add("headers", "%s is set by every delivery and cannot be overridden", name)
		case !httpguts.ValidHeaderFieldValue(value):
			add("headers", "the value of %s is not a valid header value", name)
		}
	}
	if e.Timeout < 100*time.Millisecond || e.Timeout > 5*time.Minute {
		add("timeout", "%s is outside 100ms..5m", e.Timeout)
	}
	if e.Secret != "" && strings.TrimSpace(e.Secret) != e.Secret {
		add("secret", "has leading or trailing whitespace (a stray newline from a secret file?)")
	}
	switch e.Format {
	case FormatDistribution, FormatCloudEvents:
	default:
		add("format", "%q is not distribution or cloudevents", e.Format)
	}
	if _, ok := distributionTypes[e.DistributionMediaType]; !ok {
		add("distribution_media_type", "%q is not v2 or v1", e.DistributionMediaType)
	}
	for i, a := range e.Filters.Actions {
		switch a {
		case ActionPush, ActionPull, ActionDelete, ActionMount:
		default:
			add(fmt.Sprintf("filters.actions[%d]", i), "%q is not push, pull, delete or mount", a)
		}
	}
	for i, p := range e.Filters.Repositories {
		if !doublestar.ValidatePattern(p) {
			add(fmt.Sprintf("filters.repositories[%d]", i), "%q is not a valid glob", p)
		}
	}
	for i, p := range e.Filters.MediaTypes {
		if !doublestar.ValidatePattern(p) {
			add(fmt.Sprintf("filters.media_types[%d]", i), "%q is not a valid glob", p)
		}
	}
	return errs
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
