package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Config is the `redis` section of the configuration. Durations are
// time.Duration: the YAML decoder and the STRATUS_* environment loader both
// parse "5s" into it, so no wrapper type is needed.
type Config struct {
	// Addrs: one address is a standalone server, several are cluster
	// nodes; with MasterName they are sentinels. An address is host:port,
	// or an absolute unix socket path for a standalone server.
	Addrs []string `yaml:"addrs"`
	// MasterName selects Redis Sentinel: the name of the monitored master.
	MasterName string    `yaml:"master_name"`
	Username   string    `yaml:"username"`
	Password   string    `yaml:"password"`
	DB         int       `yaml:"db"`
	TLS        TLSConfig `yaml:"tls"`
	// PoolSize is connections per node; 0 means go-redis's default
	// (10 per CPU).
	PoolSize     int `yaml:"pool_size"`
	MinIdleConns int `yaml:"min_idle_conns"`
	// The timeouts bound how long a request waits for an unreachable Redis
	// before it is answered 503.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// KeyPrefix namespaces every key, so several registries can share one
	// Redis. It may not contain braces: keys use {hash tags} so that the
	// keys one script touches share a cluster slot.
	KeyPrefix string `yaml:"key_prefix"`
	// PinTTL is how long a GC pin is remembered. It must exceed the GC
	// grace period plus the longest GC mark phase, or a claim could miss a
	// pin that should have stopped it.
	PinTTL time.Duration `yaml:"pin_ttl"`
}

// TLSConfig secures the connection to Redis.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle to verify the server with instead of the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that
	// require one.
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Defaults applied by SetDefaults.
const (
	DefaultKeyPrefix    = "stratus:"
	DefaultDialTimeout  = 5 * time.Second
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
	DefaultPinTTL       = 24 * time.Hour
)

// SetDefaults fills the keys left unset.
func (c *Config) SetDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.PinTTL == 0 {
		c.PinTTL = DefaultPinTTL
	}
}

// Validate reports every problem at once, each prefixed with its key path.
// It reads the TLS files, so that a wrong path fails `config check` rather
// than the first request.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("redis.%s: %s", key, fmt.Sprintf(format, args...)))
	}

	cluster := len(c.Addrs) > 1 && c.MasterName == ""
	if len(c.Addrs) == 0 {
		add("addrs", "required")
	}
	for i, a := range c.Addrs {
		key := fmt.Sprintf("addrs[%d]", i)
		switch {
		case strings.TrimSpace(a) == "":
			add(key, "empty address")
		case strings.HasPrefix(a, "/"):
			if len(c.Addrs) > 1 || c.MasterName != "" {
				add(key, "a unix socket is only possible for a single standalone server")
			}
		default:
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				add(key, "%q is not host:port or an absolute unix socket path", a)
			}
		}
	}
	if c.DB < 0 {
		add("db", "must not be negative")
	}
	if c.DB != 0 && cluster {
		add("db", "must be 0 with a cluster (several addrs and no master_name)")
	}
	if c.PoolSize < 0 {
		add("pool_size", "must not be negative")
	}
	if c.MinIdleConns < 0 {
		add("min_idle_conns", "must not be negative")
	}
	if c.PoolSize > 0 && c.MinIdleConns > c.PoolSize {
		add("min_idle_conns", "%d exceeds pool_size %d", c.MinIdleConns, c.PoolSize)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"dial_timeout", c.DialTimeout},
		{"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout},
		{"pin_ttl", c.PinTTL},
	} {
		if d.v < 0 {
			add(d.key, "must not be negative")
		}
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		add("key_prefix", "must not contain { or } (they would change which keys share a cluster slot)")
	}
	if c.Password != "" && strings.TrimSpace(c.Password) != c.Password {
		add("password", "has leading or trailing whitespace (a stray newline from a secret file?)")
	}
	if _, err := c.TLS.config(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// config builds the TLS settings, or nil when TLS is off.
func (t TLSConfig) config() (*tls.Config, error) {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("redis.tls.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !t.Enabled {
		for _, f := range []struct {
			key string
			set bool
		}{
			{"ca_file", t.CAFile != ""},
			{"cert_file", t.CertFile != ""},
			{"key_file", t.KeyFile != ""},
			{"server_name", t.ServerName != ""},
			{"insecure_skip_verify", t.InsecureSkipVerify},
		} {
			if f.set {
				add(f.key, "set but redis.tls.enabled is false")
			}
		}
		return nil, errors.Join(errs...)
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			add("ca_file", "%v", err)
		} else {
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				add("ca_file", "no PEM certificate in %s", t.CAFile)
			}
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		add("cert_file", "cert_file and key_file must be set together")
	case t.CertFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			add("cert_file", "%v", err)
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}
