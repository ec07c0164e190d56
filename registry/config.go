package registry

import (
	"errors"
	"fmt"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// Config is the `registry:` section of the configuration.
type Config struct {
	// MaxManifestSize bounds a manifest PUT; larger ones get 413. The spec
	// asks registries to accept at least 4 MiB.
	MaxManifestSize storage.Size `yaml:"max_manifest_size"`
	// UploadTTL is how long an idle upload session lives.
	UploadTTL time.Duration `yaml:"upload_ttl"`
	// LeaseTTL bounds how long a crashed replica can block the upload it
	// was writing; live writers renew it while a chunk streams.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// LeaseWait is how long a request waits for an upload's lease held by
	// another request before answering 409.
	LeaseWait time.Duration `yaml:"lease_wait"`
	// PinTimeout bounds the reference checks of a manifest PUT. It must be
	// shorter than the GC grace period (design.md §6).
	PinTimeout time.Duration `yaml:"pin_timeout"`
	// MaxReferrers bounds the referrers listed for one subject.
	MaxReferrers int `yaml:"max_referrers"`
}

const minManifestLimit = 4 << 20

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxManifestSize == 0 {
		c.MaxManifestSize = minManifestLimit
	}
	if c.UploadTTL == 0 {
		c.UploadTTL = 24 * time.Hour
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.LeaseWait == 0 {
		c.LeaseWait = c.LeaseTTL + 5*time.Second
	}
	if c.PinTimeout == 0 {
		c.PinTimeout = 30 * time.Second
	}
	if c.MaxReferrers == 0 {
		c.MaxReferrers = 10000
	}
}

// Validate reports every invalid field with its key path.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxManifestSize < minManifestLimit || c.MaxManifestSize > 64<<20 {
		errs = append(errs, fmt.Errorf("registry.max_manifest_size: %s is outside 4MiB..64MiB", c.MaxManifestSize))
	}
	if c.UploadTTL < time.Minute {
		errs = append(errs, fmt.Errorf("registry.upload_ttl: %s is shorter than 1m; clients pause longer between chunks", c.UploadTTL))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("registry.lease_ttl: %s is shorter than 1s", c.LeaseTTL))
	}
	if c.LeaseWait < 0 {
		errs = append(errs, errors.New("registry.lease_wait: must not be negative"))
	}
	if c.PinTimeout <= 0 {
		errs = append(errs, errors.New("registry.pin_timeout: must be positive"))
	}
	if c.MaxReferrers < 1 {
		errs = append(errs, errors.New("registry.max_referrers: must be at least 1"))
	}
	return errors.Join(errs...)
}
