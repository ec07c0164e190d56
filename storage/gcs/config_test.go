package gcs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage/gcs"
)

func TestConfigValidate(t *testing.T) {
	valid := func() gcs.Config { return gcs.Config{Bucket: "registry"} }
	tests := []struct {
		name   string
		modify func(c *gcs.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(c *gcs.Config) {}, nil},
		{"everything set", func(c *gcs.Config) {
			*c = gcs.Config{
				Bucket: "registry", RootDirectory: "/stratus/prod/", CredentialsFile: "/etc/gcs/key.json",
				Endpoint: "https://storage.example", ChunkSize: 32 << 20, RequestTimeout: time.Second, MaxRetries: new(0),
				KMSKeyName: "projects/p/locations/eu/keyRings/r/cryptoKeys/k", Redirect: true, RedirectExpiry: time.Hour,
			}
		}, nil},
		{"emulator", func(c *gcs.Config) { c.Endpoint = "http://127.0.0.1:4443"; c.Anonymous = true }, nil},
		{"bucket missing", func(c *gcs.Config) { c.Bucket = "" }, []string{"storage.gcs.bucket: required"}},
		{"bucket is a URL", func(c *gcs.Config) { c.Bucket = "gs://registry" }, []string{"storage.gcs.bucket:"}},
		{"bad root", func(c *gcs.Config) { c.RootDirectory = "a/../b" }, []string{"storage.gcs.root_directory:"}},
		{"endpoint without scheme", func(c *gcs.Config) { c.Endpoint = "127.0.0.1:4443" }, []string{"storage.gcs.endpoint:"}},
		{"anonymous with key file", func(c *gcs.Config) { c.Anonymous = true; c.CredentialsFile = "k.json" }, []string{"storage.gcs.anonymous:"}},
		{"chunk too small", func(c *gcs.Config) { c.ChunkSize = 100 << 10 }, []string{"storage.gcs.chunk_size: must be at least 256KiB"}},
		{"chunk minimum", func(c *gcs.Config) { c.ChunkSize = 256 << 10 }, nil},
		{"chunk not a multiple", func(c *gcs.Config) { c.ChunkSize = 1<<20 + 1 }, []string{"storage.gcs.chunk_size: must be a multiple of 256KiB"}},
		{"chunk too large", func(c *gcs.Config) { c.ChunkSize = 2 << 30 }, []string{"storage.gcs.chunk_size: must be at most 1GiB"}},
		{"timeout negative", func(c *gcs.Config) { c.RequestTimeout = -time.Second }, []string{"storage.gcs.request_timeout:"}},
		{"retries negative", func(c *gcs.Config) { c.MaxRetries = new(-1) }, []string{"storage.gcs.max_retries:"}},
		{"kms key not a resource name", func(c *gcs.Config) { c.KMSKeyName = "my-key" }, []string{"storage.gcs.kms_key_name:"}},
		{"redirect expiry too long", func(c *gcs.Config) { c.RedirectExpiry = 8 * 24 * time.Hour }, []string{"storage.gcs.redirect_expiry:"}},
		{"redirect without credentials", func(c *gcs.Config) { c.Redirect = true; c.Anonymous = true }, []string{"storage.gcs.redirect:"}},
		{"every error at once", func(c *gcs.Config) { c.Bucket = ""; c.ChunkSize = 1; c.MaxRetries = new(-5) }, []string{
			"storage.gcs.bucket:", "storage.gcs.chunk_size:", "storage.gcs.max_retries:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			c.SetDefaults()
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil; want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v; want it to mention %q", err, w)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.want) {
				t.Errorf("Validate reported %d problems: %v; want %d", n, err, len(tt.want))
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	var c gcs.Config
	c.SetDefaults()
	if c.ChunkSize != 16<<20 || c.RequestTimeout != time.Minute || c.MaxRetries == nil || *c.MaxRetries != 5 ||
		c.RedirectExpiry != 20*time.Minute || c.Redirect || c.Anonymous {
		t.Errorf("defaults = %+v", c)
	}
}
