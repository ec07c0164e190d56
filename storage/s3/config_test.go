package s3_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage/s3"
)

func TestConfigValidate(t *testing.T) {
	valid := func() s3.Config { return s3.Config{Bucket: "registry"} }
	tests := []struct {
		name   string
		modify func(c *s3.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(c *s3.Config) {}, nil},
		{"everything set", func(c *s3.Config) {
			*c = s3.Config{
				Bucket: "registry", Region: "eu-west-1", RootDirectory: "/stratus/prod/", Endpoint: "https://s3.example:9000",
				ForcePathStyle: true, AccessKey: "AK", SecretKey: "SK", SessionToken: "T", SSE: "aws:kms", KMSKeyID: "arn:kms",
				StorageClass: "STANDARD_IA", PartSize: 64 << 20, UploadConcurrency: 8, RequestTimeout: time.Second,
				MaxRetries: new(0), Redirect: true, RedirectExpiry: time.Hour,
			}
		}, nil},
		{"bucket missing", func(c *s3.Config) { c.Bucket = "" }, []string{"storage.s3.bucket: required"}},
		{"bucket is a path", func(c *s3.Config) { c.Bucket = "registry/data" }, []string{"storage.s3.bucket:"}},
		{"bad root", func(c *s3.Config) { c.RootDirectory = "a/../b" }, []string{"storage.s3.root_directory:"}},
		{"endpoint without scheme", func(c *s3.Config) { c.Endpoint = "minio:9000" }, []string{"storage.s3.endpoint:"}},
		{"access key alone", func(c *s3.Config) { c.AccessKey = "AK" }, []string{"storage.s3.access_key: access_key and secret_key must be set together"}},
		{"session token alone", func(c *s3.Config) { c.SessionToken = "T" }, []string{"storage.s3.session_token:"}},
		{"profile and keys", func(c *s3.Config) { c.Profile = "p"; c.AccessKey, c.SecretKey = "a", "b" }, []string{"storage.s3.profile:"}},
		{"secret with newline", func(c *s3.Config) { c.AccessKey, c.SecretKey = "a", "b\n" }, []string{"storage.s3.secret_key: has leading or trailing whitespace"}},
		{"unknown sse", func(c *s3.Config) { c.SSE = "aes256" }, []string{"storage.s3.sse:"}},
		{"kms key without kms", func(c *s3.Config) { c.SSE = "AES256"; c.KMSKeyID = "k" }, []string{"storage.s3.kms_key_id: only valid with sse: aws:kms"}},
		{"unknown storage class", func(c *s3.Config) { c.StorageClass = "COLD" }, []string{"storage.s3.storage_class:"}},
		{"part size too small", func(c *s3.Config) { c.PartSize = 4 << 20 }, []string{"storage.s3.part_size: must be at least 5MiB"}},
		{"part size minimum", func(c *s3.Config) { c.PartSize = 5 << 20 }, nil},
		{"part size too large", func(c *s3.Config) { c.PartSize = 6 << 30 }, []string{"storage.s3.part_size: must be at most 5GiB"}},
		{"concurrency negative", func(c *s3.Config) { c.UploadConcurrency = -1 }, []string{"storage.s3.upload_concurrency:"}},
		{"concurrency huge", func(c *s3.Config) { c.UploadConcurrency = 1000 }, []string{"storage.s3.upload_concurrency:"}},
		{"timeout negative", func(c *s3.Config) { c.RequestTimeout = -time.Second }, []string{"storage.s3.request_timeout:"}},
		{"retries negative", func(c *s3.Config) { c.MaxRetries = new(-1) }, []string{"storage.s3.max_retries:"}},
		{"redirect expiry too long", func(c *s3.Config) { c.RedirectExpiry = 8 * 24 * time.Hour }, []string{"storage.s3.redirect_expiry:"}},
		{"every error at once", func(c *s3.Config) { c.Bucket = ""; c.SSE = "x"; c.PartSize = 1 }, []string{
			"storage.s3.bucket:", "storage.s3.sse:", "storage.s3.part_size:",
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
	var c s3.Config
	c.SetDefaults()
	if c.PartSize != 8<<20 || c.UploadConcurrency != 4 || c.RequestTimeout != time.Minute ||
		c.MaxRetries == nil || *c.MaxRetries != 5 || c.RedirectExpiry != 20*time.Minute || c.Redirect {
		t.Errorf("defaults = %+v", c)
	}
}
