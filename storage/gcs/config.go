package gcs

import (
	"cmp"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// Config is the `storage.gcs` section of the configuration.
//
// Credentials: Application Default Credentials unless credentials_file is
// set: GOOGLE_APPLICATION_CREDENTIALS, the gcloud user credentials, then
// the metadata server (GCE, GKE workload identity, Cloud Run).
// credentials_file names a service-account key file instead. anonymous
// sends no credentials at all (emulators). When the STORAGE_EMULATOR_HOST
// environment variable is set, the Go client talks to that host without
// credentials, as every Google client library does; endpoint then has no
// effect.
type Config struct {
	Bucket string `yaml:"bucket"`
	// RootDirectory is a key prefix inside the bucket, so that several
	// registries (or other data) can share one bucket.
	RootDirectory string `yaml:"root_directory"`
	// CredentialsFile is a service-account JSON key file.
	CredentialsFile string `yaml:"credentials_file"`
	// Anonymous sends requests without credentials (emulators, tests).
	Anonymous bool `yaml:"anonymous"`
	// Endpoint overrides the JSON API host, for emulators and private
	// endpoints: "http://127.0.0.1:4443" or "https://storage-xyz.p.googleapis.com".
	Endpoint string `yaml:"endpoint"`
	// ChunkSize is the size of a multipart part and of the one buffer a
	// write holds (the Go client's upload buffer). A composite object has
	// at most 1,024 components, so a resumable write is limited to
	// 1,024 x chunk_size (16 GiB at the 16 MiB default). Whole-object Puts
	// of any size stream in chunks of this size.
	ChunkSize storage.Size `yaml:"chunk_size"`
	// RequestTimeout bounds connecting and waiting for the response headers
	// of one attempt; bodies stream for as long as they need.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxRetries is how many times the client retries a transient failure
	// (408, 429, 5xx, connection errors) of an idempotent call, with
	// jittered exponential backoff; 0 disables retries. Unset means
	// DefaultMaxRetries.
	MaxRetries *int `yaml:"max_retries"`
	// KMSKeyName encrypts new objects with a customer-managed key:
	// projects/P/locations/L/keyRings/R/cryptoKeys/K.
	KMSKeyName string `yaml:"kms_key_name"`
	// Redirect answers blob pulls with a redirect to a V4 signed URL valid
	// for RedirectExpiry. Signing needs a key (credentials_file) or, with
	// workload identity, the iam.serviceAccounts.signBlob permission.
	Redirect       bool          `yaml:"redirect"`
	RedirectExpiry time.Duration `yaml:"redirect_expiry"`
}

// Defaults applied by SetDefaults, and the limits GCS imposes.
const (
	DefaultChunkSize      = 16 << 20
	DefaultRequestTimeout = 60 * time.Second
	DefaultMaxRetries     = 5
	DefaultRedirectExpiry = 20 * time.Minute

	// chunkQuantum: the Go client rounds chunk sizes up to it, and
	// resumable uploads move in multiples of it.
	chunkQuantum = 256 << 10
	// MaxChunkSize keeps a typo from allocating gigabytes per upload.
	MaxChunkSize = 1 << 30
	// MaxComponents is GCS's limit on the components of a composite
	// object; maxComposeSources its limit on the sources of one compose.
	MaxComponents     = 1024
	maxComposeSources = 32
	// maxSignedExpiry is the V4 signature limit.
	maxSignedExpiry = 7 * 24 * time.Hour
)

// SetDefaults fills the keys left unset.
func (c *Config) SetDefaults() {
	c.ChunkSize = cmp.Or(c.ChunkSize, DefaultChunkSize)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	if c.MaxRetries == nil {
		c.MaxRetries = new(DefaultMaxRetries)
	}
	c.RedirectExpiry = cmp.Or(c.RedirectExpiry, DefaultRedirectExpiry)
}

// Validate reports every problem at once, each prefixed with its key path.
// It expects SetDefaults to have run.
func (c *Config) Validate() error {
	errs := storage.ConfigErrors{Prefix: "storage.gcs."}
	add := errs.Add
	errs.Bucket(c.Bucket, "gs:")
	errs.RootDirectory(c.RootDirectory)
	errs.Endpoint("endpoint", c.Endpoint)
	if c.CredentialsFile != "" && c.Anonymous {
		add("anonymous", "set together with credentials_file; use one or the other")
	}
	switch {
	case c.ChunkSize < chunkQuantum:
		add("chunk_size", "must be at least %s", storage.Size(chunkQuantum))
	case c.ChunkSize > MaxChunkSize:
		add("chunk_size", "must be at most %s", storage.Size(MaxChunkSize))
	case c.ChunkSize%chunkQuantum != 0:
		add("chunk_size", "must be a multiple of 256KiB (the resumable-upload quantum)")
	}
	errs.Timeout("request_timeout", c.RequestTimeout)
	errs.Retries("max_retries", c.MaxRetries)
	if c.KMSKeyName != "" && (!strings.HasPrefix(c.KMSKeyName, "projects/") || !strings.Contains(c.KMSKeyName, "/cryptoKeys/")) {
		add("kms_key_name", "%q is not projects/P/locations/L/keyRings/R/cryptoKeys/K", c.KMSKeyName)
	}
	if c.RedirectExpiry <= 0 || c.RedirectExpiry > maxSignedExpiry {
		add("redirect_expiry", "must be positive and at most %s (the V4 signature limit)", maxSignedExpiry)
	}
	if c.Redirect && c.Anonymous {
		add("redirect", "needs credentials that can sign; anonymous has none")
	}
	return errs.Err()
}

// maxAttempts turns max_retries into the client's attempt count.
func (c *Config) maxAttempts() int {
	return storage.RetryCount(c.MaxRetries, DefaultMaxRetries) + 1
}
