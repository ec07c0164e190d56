package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stratus-registry/stratus/httpmw"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/notifications"
	"github.com/stratus-registry/stratus/proxycache"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/gc"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/filesystem"
	"github.com/stratus-registry/stratus/storage/gcs"
	"github.com/stratus-registry/stratus/storage/s3"
)

// Config is the whole configuration: one typed tree, each section owned by
// the package that uses it. Load order: YAML file (strict), STRATUS_*
// environment variables, --set flags, defaults, then Validate.
type Config struct {
	Log      LogConfig        `yaml:"log"`
	HTTP     HTTPConfig       `yaml:"http"`
	Storage  StorageConfig    `yaml:"storage"`
	Redis    lockredis.Config `yaml:"redis"`
	Registry registry.Config  `yaml:"registry"`
	Metrics  MetricsConfig    `yaml:"metrics"`
	// Notifications are the webhooks (notifications package).
	Notifications notifications.Config `yaml:"notifications"`
	Limits        LimitsConfig         `yaml:"limits"`
	Auth          AuthConfig           `yaml:"auth"`
	// Proxy holds the pull-through mirror prefixes (package proxycache).
	Proxy proxycache.Config `yaml:"proxy"`
	// Tracing is the optional OpenTelemetry export (tracing.go).
	Tracing TracingConfig `yaml:"tracing"`
	// Policies are the tag policies (immutable tags, retention).
	Policies PoliciesConfig `yaml:"policies"`
	// UI is the web UI (ui.go).
	UI UIConfig `yaml:"ui"`

	// path is the file the configuration came from, and reload loads it
	// again with the same environment and flags (the policy reload).
	path   string
	reload func() (*Config, error)
}

// MetricsConfig places the Prometheus endpoint. By default it has a
// listener of its own, off the public port, so that a load balancer in
// front of http.addr never exposes it.
type MetricsConfig struct {
	// Addr is the listener serving /metrics; "off" serves it on no
	// separate port.
	Addr string `yaml:"addr"`
	// MainPort also serves /metrics on http.addr.
	MainPort bool `yaml:"main_port"`
}

// metricsOff is the metrics.addr value that turns the separate listener off.
const metricsOff = "off"

// LogConfig selects the structured-log output.
type LogConfig struct {
	Level  slog.Level `yaml:"level"`
	Format LogFormat  `yaml:"format"`
}

// LogFormat is "text" or "json".
type LogFormat string

func (f *LogFormat) UnmarshalText(b []byte) error {
	switch s := LogFormat(strings.ToLower(string(b))); s {
	case "text", "json":
		*f = s
		return nil
	}
	return fmt.Errorf("unknown log format %q (want text or json)", b)
}

// HTTPConfig is the listener.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// TLS is on when both files are set. The files are re-read when they
	// change (see internal/tlsreload).
	TLS struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
		// ClientCA is a PEM bundle; when set, every client must present a
		// certificate it verifies (mutual TLS).
		ClientCA string `yaml:"client_ca"`
	} `yaml:"tls"`
	// ShutdownTimeout bounds how long in-flight requests may drain on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout guards against slow-loris clients; bodies may stream
	// for as long as they need (a 10 GiB layer on a slow link).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownDelay is how long /readyz fails before the listener closes
	// on SIGTERM, so that load balancers stop sending new requests first.
	// 0 closes at once.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// TrustedProxies are the CIDRs (or addresses) of the proxies whose
	// X-Forwarded-For names the client; from anyone else it is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// StorageConfig chooses one driver and holds each driver's section.
type StorageConfig struct {
	Driver     DriverName        `yaml:"driver"`
	Filesystem filesystem.Config `yaml:"filesystem"`
	S3         s3.Config         `yaml:"s3"`
	Azure      azure.Config      `yaml:"azure"`
	GCS        gcs.Config        `yaml:"gcs"`
}

// DriverName is the storage backend; its zero value means "use the default".
type DriverName string

const (
	DriverFilesystem DriverName = "filesystem"
	DriverInmemory   DriverName = "inmemory"
	DriverS3         DriverName = "s3"
	DriverAzure      DriverName = "azure"
	DriverGCS        DriverName = "gcs"
)

func (d *DriverName) UnmarshalText(b []byte) error {
	switch n := DriverName(strings.ToLower(string(b))); n {
	case DriverFilesystem, DriverInmemory, DriverS3, DriverAzure, DriverGCS:
		*d = n
		return nil
	}
	return fmt.Errorf("unknown storage driver %q (want filesystem, inmemory, s3, azure or gcs)", b)
}

// decodeConfig reads YAML strictly: an unknown key is an error, with its line.
func decodeConfig(r io.Reader, cfg *Config) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return err
	}
	return nil
}

// loadConfig builds the configuration from a file (optional), the process
// environment and --set overrides, then applies defaults and validates.
// Every stage runs even when an earlier one failed, so one run reports
// every problem (a typo in the environment does not hide a bad value in
// the file), each with its key path.
func loadConfig(path string, env []string, sets []string) (*Config, error) {
	var cfg Config
	var errs []error
	explicit := map[string]bool{}
	if path != "" {
		keys, err := loadConfigFile(path, &cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("config %s: %w", path, err))
		}
		for _, k := range keys {
			explicit[k] = true
		}
	}
	envKeys, err := applyEnv(&cfg, env)
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range envKeys {
		explicit[k] = true
	}
	for _, s := range sets {
		key, value, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !ok {
			errs = append(errs, fmt.Errorf("--set %q: want key.path=value", s))
			continue
		}
		if err := setKey(&cfg, key, value); err != nil {
			errs = append(errs, fmt.Errorf("--set: %w", err))
			continue
		}
		explicit[key] = true
	}
	cfg.path = path
	cfg.reload = func() (*Config, error) { return loadConfig(path, env, sets) }
	zeroBefore := zeroLeaves(&cfg)
	cfg.setDefaults()
	errs = append(errs, defaultedZeros(&cfg, explicit, zeroBefore), cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return &cfg, err
	}
	return &cfg, nil
}

// loadConfigFile decodes the file into cfg and returns the key paths it
// sets.
func loadConfigFile(path string, cfg *Config) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	var keys []string
	if yaml.Unmarshal(data, &root) == nil {
		keys = yamlKeyPaths(&root, "")
	}
	// decodeConfig reports the syntax error itself, with its line.
	return keys, decodeConfig(bytes.NewReader(data), cfg)
}

// yamlKeyPaths lists the dotted paths of every scalar or sequence value in
// a YAML document.
func yamlKeyPaths(n *yaml.Node, prefix string) []string {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return yamlKeyPaths(n.Content[0], prefix)
		}
	case yaml.MappingNode:
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := n.Content[i].Value
			if prefix != "" {
				path = prefix + "." + path
			}
			out = append(out, yamlKeyPaths(n.Content[i+1], path)...)
		}
		return out
	default:
		if prefix != "" {
			return []string{prefix}
		}
	}
	return nil
}

// zeroLeaves records which keys hold their zero value before defaults.
func zeroLeaves(cfg *Config) map[string]bool {
	out := map[string]bool{}
	for _, l := range leaves(cfg) {
		out[l.path] = l.field.IsZero()
	}
	return out
}

// defaultedZeros reports keys given explicitly as zero ("0", "", "0s") that
// the defaults then replaced: for those keys zero means nothing, and
// silently using the default would hide the mistake. Keys where zero has a
// meaning (registry.gc.interval: 0 = off) keep their zero and pass.
func defaultedZeros(cfg *Config, explicit, zeroBefore map[string]bool) error {
	var errs []error
	for _, l := range leaves(cfg) {
		if explicit[l.path] && zeroBefore[l.path] && !l.field.IsZero() {
			errs = append(errs, fmt.Errorf("%s: a zero or empty value is not valid here; leave the key out to get the default (%v)", l.path, l.field.Interface()))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = ":5000"
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = 30 * time.Second
	}
	if c.HTTP.ReadHeaderTimeout == 0 {
		c.HTTP.ReadHeaderTimeout = 10 * time.Second
	}
	if c.HTTP.IdleTimeout == 0 {
		c.HTTP.IdleTimeout = 2 * time.Minute
	}
	if c.Metrics.Addr == "" {
		c.Metrics.Addr = ":9090"
	}
	if c.Storage.Driver == "" {
		c.Storage.Driver = DriverFilesystem
	}
	if c.Storage.Driver == DriverFilesystem && c.Storage.Filesystem.Root == "" {
		c.Storage.Filesystem.Root = "./data"
	}
	c.Registry.SetDefaults()
	c.Proxy.SetDefaults()
	c.Notifications.SetDefaults()
	c.Limits.setDefaults()
	c.Auth.setDefaults()
	c.Tracing.setDefaults()
	c.UI.setDefaults()
	if c.redisEnabled() {
		c.Redis.SetDefaults()
	}
	if c.Storage.Driver == DriverS3 {
		c.Storage.S3.SetDefaults()
	}
	if c.Storage.Driver == DriverAzure {
		c.Storage.Azure.SetDefaults()
	}
	if c.Storage.Driver == DriverGCS {
		c.Storage.GCS.SetDefaults()
	}
}

// redisEnabled: Redis is used as soon as an address is configured; without
// one, the in-process store keeps sessions and leases (one replica only).
func (c *Config) redisEnabled() bool { return len(c.Redis.Addrs) > 0 }

// Validate reports every problem at once, each with its key path.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateTLS())
	for _, f := range []struct {
		key string
		d   time.Duration
	}{
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_delay", c.HTTP.ShutdownDelay},
	} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", f.key))
		}
	}
	errs = append(errs, c.validateObservability(), c.Proxy.Validate("proxy"))
	switch c.Storage.Driver {
	case DriverFilesystem:
		errs = append(errs, c.Storage.Filesystem.Validate())
	case DriverS3:
		errs = append(errs, c.Storage.S3.Validate())
	case DriverAzure:
		errs = append(errs, c.Storage.Azure.Validate())
	case DriverGCS:
		errs = append(errs, c.Storage.GCS.Validate())
	}
	if c.redisEnabled() {
		errs = append(errs, c.Redis.Validate())
		// A claim looks at pins back to markStart - grace; a pin forgotten
		// sooner would let GC delete a blob a client was just shown. A pass
		// stops claiming once pins from its start may be gone, so the
		// margin must leave it time to claim at all.
		if c.Redis.PinTTL-c.Registry.GC.Grace <= gc.ClaimTTL {
			errs = append(errs, fmt.Errorf("redis.pin_ttl: %s must exceed registry.gc.grace (%s) by more than %s", c.Redis.PinTTL, c.Registry.GC.Grace, gc.ClaimTTL))
		}
	}
	errs = append(errs, c.Registry.Validate(), c.Limits.validate(), c.Auth.validate(), c.validateTokenReplicas(),
		c.Notifications.Validate("notifications"), c.Tracing.validate(), c.Policies.validate(c.Registry.GC.Grace),
		c.validateUI())
	return errors.Join(errs...)
}

// validateObservability checks the metrics and middleware keys.
func (c *Config) validateObservability() error {
	var errs []error
	if _, err := httpmw.ParseProxies(c.HTTP.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("http.trusted_proxies: %w", err))
	}
	if c.Metrics.Addr != metricsOff {
		// Port 0 (a kernel-chosen port, in tests) never clashes.
		if _, port, err := net.SplitHostPort(c.Metrics.Addr); err != nil {
			errs = append(errs, fmt.Errorf("metrics.addr: %q is not host:port or %q", c.Metrics.Addr, metricsOff))
		} else if c.Metrics.Addr == c.HTTP.Addr && port != "0" {
			errs = append(errs, fmt.Errorf("metrics.addr: %s is http.addr; set metrics.main_port: true to serve /metrics there", c.Metrics.Addr))
		}
	}
	return errors.Join(errs...)
}
