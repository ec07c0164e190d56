package redis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
addrs: ["r1:6379", "r2:6379"]
username: u
password: p
tls:
  enabled: true
  insecure_skip_verify: true
  server_name: redis.internal
pool_size: 20
min_idle_conns: 2
dial_timeout: 2s
read_timeout: 1500ms
write_timeout: 1m
key_prefix: "reg1:"
pin_ttl: 48h
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.DialTimeout != 2*time.Second || c.ReadTimeout != 1500*time.Millisecond ||
		c.WriteTimeout != time.Minute || c.PinTTL != 48*time.Hour {
		t.Errorf("durations = %v %v %v %v", c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PinTTL)
	}
	if len(c.Addrs) != 2 || c.TLS.ServerName != "redis.internal" || !c.TLS.InsecureSkipVerify || c.KeyPrefix != "reg1:" {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Addrs: []string{"localhost:6379"}}
	c.SetDefaults()
	if c.KeyPrefix != "stratus:" || c.DialTimeout != DefaultDialTimeout || c.ReadTimeout != DefaultReadTimeout ||
		c.WriteTimeout != DefaultWriteTimeout || c.PinTTL != DefaultPinTTL {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of defaults: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := func(c *Config) {}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // every line of the joined error, in order; nil: valid
	}{
		{"standalone", ok, nil},
		{"unix socket", func(c *Config) { c.Addrs = []string{"/run/redis.sock"} }, nil},
		{"cluster", func(c *Config) { c.Addrs = []string{"a:1", "b:2", "c:3"} }, nil},
		{"sentinel", func(c *Config) { c.Addrs = []string{"s1:26379", "s2:26379"}; c.MasterName = "m"; c.DB = 3 }, nil},
		{"tls with system roots", func(c *Config) { c.TLS.Enabled = true }, nil},
		{"no addrs", func(c *Config) { c.Addrs = nil }, []string{"redis.addrs: required"}},
		{"bad addrs", func(c *Config) { c.Addrs = []string{"", "nohost", "/sock"} }, []string{
			"redis.addrs[0]: empty address",
			`redis.addrs[1]: "nohost" is not host:port or an absolute unix socket path`,
			"redis.addrs[2]: a unix socket is only possible for a single standalone server",
		}},
		{"db in cluster", func(c *Config) { c.Addrs = []string{"a:1", "b:2"}; c.DB = 1 }, []string{
			"redis.db: must be 0 with a cluster (several addrs and no master_name)",
		}},
		{"negative numbers", func(c *Config) {
			c.DB, c.PoolSize, c.MinIdleConns = -1, -1, -1
			c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PinTTL = -1, -1, -1, -1
		}, []string{
			"redis.db: must not be negative",
			"redis.pool_size: must not be negative",
			"redis.min_idle_conns: must not be negative",
			"redis.dial_timeout: must not be negative",
			"redis.read_timeout: must not be negative",
			"redis.write_timeout: must not be negative",
			"redis.pin_ttl: must not be negative",
		}},
		{"idle above pool", func(c *Config) { c.PoolSize, c.MinIdleConns = 2, 3 }, []string{
			"redis.min_idle_conns: 3 exceeds pool_size 2",
		}},
		{"braces in prefix", func(c *Config) { c.KeyPrefix = "{x}:" }, []string{
			"redis.key_prefix: must not contain { or } (they would change which keys share a cluster slot)",
		}},
		{"password with newline", func(c *Config) { c.Password = "secret\n" }, []string{
			"redis.password: has leading or trailing whitespace (a stray newline from a secret file?)",
		}},
		{"tls settings without tls", func(c *Config) { c.TLS.CAFile = notPEM; c.TLS.InsecureSkipVerify = true }, []string{
			"redis.tls.ca_file: set but redis.tls.enabled is false",
			"redis.tls.insecure_skip_verify: set but redis.tls.enabled is false",
		}},
		{"bad tls files", func(c *Config) {
			c.TLS.Enabled = true
			c.TLS.CAFile = notPEM
			c.TLS.CertFile = filepath.Join(dir, "client.pem")
		}, []string{
			"redis.tls.ca_file: no PEM certificate in " + notPEM,
			"redis.tls.cert_file: cert_file and key_file must be set together",
		}},
		{"missing tls files", func(c *Config) {
			c.TLS.Enabled = true
			c.TLS.CAFile = filepath.Join(dir, "missing.pem")
			c.TLS.CertFile, c.TLS.KeyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		}, []string{
			"redis.tls.ca_file: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory",
			"redis.tls.cert_file: open " + filepath.Join(dir, "c.pem") + ": no such file or directory",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Addrs: []string{"localhost:6379"}}
			c.SetDefaults()
			tt.modify(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestMs(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{time.Minute, 60000},
	} {
		if got := ms(tt.d); got != tt.want {
			t.Errorf("ms(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
