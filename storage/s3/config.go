package s3

import (
	"cmp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stratus-registry/stratus/storage"
)

// Config is the `storage.s3` section of the configuration.
//
// Credentials: when access_key is set, the static keys are used. Otherwise
// the SDK's default chain applies, in its order: AWS_* environment
// variables, the shared config and credentials files (profile), web
// identity (EKS IRSA: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), then
// the ECS task role or the EC2 instance profile.
type Config struct {
	Bucket string `yaml:"bucket"`
	// Region of the bucket. Empty means the SDK chain (AWS_REGION, the
	// profile), then us-east-1, which is also what most S3-compatible
	// servers expect.
	Region string `yaml:"region"`
	// RootDirectory is a key prefix inside the bucket, so that several
	// registries (or other data) can share one bucket.
	RootDirectory string `yaml:"root_directory"`
	// Endpoint overrides the AWS endpoint, for S3-compatible servers
	// (MinIO, Ceph RGW, R2, ...): "https://minio.example:9000".
	Endpoint string `yaml:"endpoint"`
	// ForcePathStyle addresses the bucket as endpoint/bucket instead of
	// bucket.endpoint; most S3-compatible servers need it.
	ForcePathStyle bool   `yaml:"force_path_style"`
	AccessKey      string `yaml:"access_key"`
	SecretKey      string `yaml:"secret_key"`
	SessionToken   string `yaml:"session_token"`
	// Profile selects a profile of the shared AWS config files when no
	// static keys are set.
	Profile string `yaml:"profile"`
	// SSE is server-side encryption: "" (the bucket's default), "AES256"
	// (S3-managed keys) or "aws:kms" (with KMSKeyID, or the AWS-managed key
	// when that is empty).
	SSE          string `yaml:"sse"`
	KMSKeyID     string `yaml:"kms_key_id"`
	StorageClass string `yaml:"storage_class"`
	// PartSize is the multipart part size and the size of the one buffer
	// an upload holds in memory. S3 allows at most 10,000 parts, so the
	// largest object is 10,000 x part_size (about 78 GiB at the 8 MiB
	// default, 48.8 GiB at the 5 MiB minimum). Whole-object writes of
	// unknown size hold up to upload_concurrency+1 such buffers.
	PartSize storage.Size `yaml:"part_size"`
	// UploadConcurrency is how many parts of one whole-object write are
	// sent at once.
	UploadConcurrency int `yaml:"upload_concurrency"`
	// RequestTimeout bounds connecting and waiting for the response headers
	// of one attempt. It is not a deadline on a whole transfer: bodies
	// stream for as long as they need.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxRetries is how many times the SDK retries a transient failure
	// (5xx, throttling, timeouts, connection errors) with jittered
	// exponential backoff; 0 disables retries. Unset means
	// DefaultMaxRetries (a pointer, so that 0 can mean what it says).
	MaxRetries *int `yaml:"max_retries"`
	// Redirect lets the registry answer blob pulls with a redirect to a
	// presigned URL valid for RedirectExpiry, so the bytes do not flow
	// through the registry.
	Redirect       bool          `yaml:"redirect"`
	RedirectExpiry time.Duration `yaml:"redirect_expiry"`
}

// Defaults applied by SetDefaults, and the limits S3 imposes.
const (
	DefaultPartSize          = 8 << 20
	DefaultUploadConcurrency = 4
	DefaultRequestTimeout    = 60 * time.Second
	DefaultMaxRetries        = 5
	DefaultRedirectExpiry    = 20 * time.Minute

	// MinPartSize and MaxPartSize are S3's bounds for every part but the
	// last; MaxParts is its part count limit.
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	MaxParts    = 10000
	// maxPresignExpiry is the SigV4 limit on a presigned URL.
	maxPresignExpiry = 7 * 24 * time.Hour
	// maxUploadConcurrency keeps a typo from allocating gigabytes of
	// part buffers.
	maxUploadConcurrency = 64
)

// SetDefaults fills the keys left unset.
func (c *Config) SetDefaults() {
	c.PartSize = cmp.Or(c.PartSize, DefaultPartSize)
	c.UploadConcurrency = cmp.Or(c.UploadConcurrency, DefaultUploadConcurrency)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	if c.MaxRetries == nil {
		n := DefaultMaxRetries
		c.MaxRetries = &n
	}
	c.RedirectExpiry = cmp.Or(c.RedirectExpiry, DefaultRedirectExpiry)
}

// Validate reports every problem at once, each prefixed with its key path.
// It expects SetDefaults to have run.
func (c *Config) Validate() error {
	errs := storage.ConfigErrors{Prefix: "storage.s3."}
	add := errs.Add

	errs.Bucket(c.Bucket)
	errs.RootDirectory(c.RootDirectory)
	errs.Endpoint("endpoint", c.Endpoint)
	if (c.AccessKey == "") != (c.SecretKey == "") {
		add("access_key", "access_key and secret_key must be set together")
	}
	if c.SessionToken != "" && c.AccessKey == "" {
		add("session_token", "set without access_key and secret_key")
	}
	if c.Profile != "" && c.AccessKey != "" {
		add("profile", "set together with static access_key; use one or the other")
	}
	errs.Secret("access_key", c.AccessKey)
	errs.Secret("secret_key", c.SecretKey)
	errs.Secret("session_token", c.SessionToken)
	switch c.SSE {
	case "", "AES256", "aws:kms":
	default:
		add("sse", "%q is not one of \"\", AES256, aws:kms", c.SSE)
	}
	if c.KMSKeyID != "" && c.SSE != "aws:kms" {
		add("kms_key_id", "only valid with sse: aws:kms")
	}
	if c.StorageClass != "" && !slices.Contains(types.StorageClass("").Values(), types.StorageClass(c.StorageClass)) {
		add("storage_class", "unknown storage class %q", c.StorageClass)
	}
	switch {
	case c.PartSize < MinPartSize:
		add("part_size", "must be at least %s (S3's minimum part size)", storage.Size(MinPartSize))
	case c.PartSize > MaxPartSize:
		add("part_size", "must be at most %s (S3's maximum part size)", storage.Size(MaxPartSize))
	}
	errs.Between("upload_concurrency", c.UploadConcurrency, 1, maxUploadConcurrency)
	errs.Timeout("request_timeout", c.RequestTimeout)
	if c.MaxRetries != nil && *c.MaxRetries < 0 {
		add("max_retries", "must be 0 (no retries) or positive")
	}
	if c.RedirectExpiry <= 0 || c.RedirectExpiry > maxPresignExpiry {
		add("redirect_expiry", "must be positive and at most %s (the SigV4 limit)", maxPresignExpiry)
	}
	return errs.Err()
}

// maxAttempts turns max_retries into the SDK's attempt count.
func (c *Config) maxAttempts() int {
	if c.MaxRetries == nil {
		return DefaultMaxRetries + 1
	}
	return *c.MaxRetries + 1
}
