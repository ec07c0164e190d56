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
	// MaxChunkSize bounds one upload request body (a PATCH chunk, a final
	// PUT's body or a monolithic upload); larger ones get 413. 0, the
	// default, leaves them unbounded: docker and containerd send a whole
	// layer in one PATCH, so a limit makes them fail on large layers.
	MaxChunkSize storage.Size `yaml:"max_chunk_size"`
	// MaxReferrers bounds the referrers listed for one subject.
	MaxReferrers int `yaml:"max_referrers"`
	// GC configures online garbage collection.
	GC GCConfig `yaml:"gc"`
}

// GCConfig is the `registry.gc:` section.
type GCConfig struct {
	// Interval between background passes in `stratus serve`; 0 turns the
	// background loop off (`stratus gc run` still works). Each wait is
	// jittered by up to 10% so replicas do not contend in lockstep.
	Interval time.Duration `yaml:"interval"`
	// Grace protects recent content: nothing written or pinned within it
	// is deleted. It must exceed pin_timeout.
	Grace time.Duration `yaml:"grace"`
	// Untagged is the policy for manifests no tag reaches: "keep", or
	// "delete" once they are older than UntaggedAge.
	Untagged    string        `yaml:"untagged"`
	UntaggedAge time.Duration `yaml:"untagged_age"`
	// KeepReferrers keeps the referrers (signatures, SBOMs) of live
	// manifests alive; when false they follow the untagged policy.
	KeepReferrers *bool `yaml:"keep_referrers"`
	// Concurrency bounds parallel reads, claims and deletes.
	Concurrency int `yaml:"concurrency"`
	// MaxRate caps a pass's object-store requests per second (a listing
	// page, a read or a batch delete is one); 0 does not pace. On a small
	// machine a pass that runs unpaced competes with requests for the
	// cores (docs/benchmarks.md, "Issue 16 follow-up: GC throughput").
	MaxRate float64 `yaml:"max_rate"`
	// BusyShare is the share of one request stream's time a pass may use
	// while the fleet serves API requests (storage/pace.Yielder): one GC
	// request in flight, then a pause. In (0, 1]; 1 turns yielding off.
	// Unset: DefaultGCBusyShare. Only `stratus serve` yields; `stratus gc
	// run` is an operator asking for a pass now.
	BusyShare *float64 `yaml:"busy_share"`
	// MarkCache bounds the tags and manifests whose reads one pass
	// remembers for the next (gc.MarkCache); 0 turns the cache off. An
	// entry costs about 300 bytes plus 100 per reference.
	MarkCache *int `yaml:"mark_cache"`
}

// DefaultGCBusyShare keeps a pass to a tenth of one stream while the
// registry serves (docs/benchmarks.md, "Issue 16 follow-up: GC yields to
// serving traffic").
const DefaultGCBusyShare = 0.1

// defaultMarkCache holds a registry of 10,000 images (a tag and a manifest
// of six references each) in about 14 MiB (measured), twice that while a pass
// that finds everything changed runs.
const defaultMarkCache = 20_000

// maxMarkCache bounds registry.gc.mark_cache (about 10 GiB of entries at
// worst), so a typo cannot ask for all the memory there is.
const maxMarkCache = 10_000_000

const minManifestLimit = 4 << 20

// maxGCRate bounds registry.gc.max_rate: beyond it pacing means nothing.
const maxGCRate = 1_000_000

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
	c.GC.setDefaults()
}

func (c *GCConfig) setDefaults() {
	if c.Grace == 0 {
		c.Grace = time.Hour
	}
	if c.Untagged == "" {
		c.Untagged = "keep"
	}
	if c.UntaggedAge == 0 {
		c.UntaggedAge = 7 * 24 * time.Hour
	}
	if c.MarkCache == nil {
		n := defaultMarkCache
		c.MarkCache = &n
	}
	if c.KeepReferrers == nil {
		keep := true
		c.KeepReferrers = &keep
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.BusyShare == nil {
		share := DefaultGCBusyShare
		c.BusyShare = &share
	}
}

// Validate reports every invalid field with its key path.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxManifestSize < minManifestLimit || c.MaxManifestSize > 64<<20 {
		errs = append(errs, fmt.Errorf("registry.max_manifest_size: %s is outside 4MiB..64MiB", c.MaxManifestSize))
	}
	if c.UploadTTL < 10*time.Second {
		errs = append(errs, fmt.Errorf("registry.upload_ttl: %s is shorter than 10s; clients pause longer than that between chunks", c.UploadTTL))
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
	if c.MaxChunkSize < 0 {
		errs = append(errs, errors.New("registry.max_chunk_size: must not be negative (0: unbounded)"))
	}
	if c.MaxReferrers < 1 {
		errs = append(errs, errors.New("registry.max_referrers: must be at least 1"))
	}
	if c.GC.Interval < 0 {
		errs = append(errs, errors.New("registry.gc.interval: must not be negative (0 turns the background loop off)"))
	}
	if c.GC.Grace <= c.PinTimeout {
		errs = append(errs, fmt.Errorf("registry.gc.grace: %s must exceed registry.pin_timeout (%s), or a manifest PUT could check a blob GC is deleting", c.GC.Grace, c.PinTimeout))
	}
	switch c.GC.Untagged {
	case "keep", "delete":
	default:
		errs = append(errs, fmt.Errorf("registry.gc.untagged: %q is not keep or delete", c.GC.Untagged))
	}
	if c.GC.Untagged == "delete" && c.GC.UntaggedAge < c.GC.Grace {
		errs = append(errs, fmt.Errorf("registry.gc.untagged_age: %s is shorter than the grace period %s", c.GC.UntaggedAge, c.GC.Grace))
	}
	if c.GC.Concurrency < 1 || c.GC.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("registry.gc.concurrency: %d is outside 1..256", c.GC.Concurrency))
	}
	if !(c.GC.MaxRate >= 0 && c.GC.MaxRate <= maxGCRate) { // also refuses NaN
		errs = append(errs, fmt.Errorf("registry.gc.max_rate: %g is outside 0..%g requests per second (0 does not pace)", c.GC.MaxRate, float64(maxGCRate)))
	}
	if s := c.GC.BusyShare; s != nil && !(*s > 0 && *s <= 1) { // also refuses NaN
		errs = append(errs, fmt.Errorf("registry.gc.busy_share: %g is outside (0, 1] (1 does not yield)", *s))
	}
	if n := c.GC.MarkCache; n != nil && (*n < 0 || *n > maxMarkCache) {
		errs = append(errs, fmt.Errorf("registry.gc.mark_cache: %d is outside 0..%d entries (0 turns the cache off)", *n, maxMarkCache))
	}
	return errors.Join(errs...)
}
