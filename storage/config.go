package storage

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ConfigErrors collects the problems a driver's Validate finds, all of
// them rather than the first, each prefixed with its key path
// ("storage.s3.bucket: required"). Its checks are the ones several
// drivers' configurations share.
type ConfigErrors struct {
	// Prefix is the path of the driver's section, with its trailing dot.
	Prefix string
	errs   []error
}

// Add records a problem with key.
func (c *ConfigErrors) Add(key, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s%s: %s", c.Prefix, key, fmt.Sprintf(format, args...)))
}

// Err joins the problems found; nil when there are none.
func (c *ConfigErrors) Err() error { return errors.Join(c.errs...) }

// Bucket checks a required bucket name that is not a path or URL (nor
// starts with one of urlSchemes, such as "gs:").
func (c *ConfigErrors) Bucket(name string, urlSchemes ...string) {
	notName := strings.ContainsAny(name, "/ \t\n")
	for _, s := range urlSchemes {
		notName = notName || strings.HasPrefix(name, s)
	}
	switch {
	case name == "":
		c.Add("bucket", "required")
	case notName:
		c.Add("bucket", "%q is a bucket name, not a path or URL", name)
	}
}

// RootDirectory checks a root_directory: slashes at either end are
// ignored, and what is left must be a valid key (or empty).
func (c *ConfigErrors) RootDirectory(root string) {
	if r := strings.Trim(root, "/"); r != "" && !ValidKey(r) {
		c.Add("root_directory", "%q must be slash-separated segments without empty, \".\" or \"..\" segments", root)
	}
}

// Endpoint checks an optional http:// or https:// URL.
func (c *ConfigErrors) Endpoint(key, value string) {
	if value == "" {
		return
	}
	if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.Add(key, "%q is not an http:// or https:// URL", value)
	}
}

// Secret checks that a credential carries no surrounding white space.
func (c *ConfigErrors) Secret(key, value string) {
	if value != strings.TrimSpace(value) {
		c.Add(key, "has leading or trailing whitespace (a stray newline from a secret file?)")
	}
}

// Between checks that an integer setting lies in [lo, hi].
func (c *ConfigErrors) Between(key string, v, lo, hi int) {
	if v < lo || v > hi {
		c.Add(key, "must be between %d and %d", lo, hi)
	}
}

// Timeout checks a duration that may be zero but not negative.
func (c *ConfigErrors) Timeout(key string, d time.Duration) {
	if d < 0 {
		c.Add(key, "must not be negative")
	}
}

// Retries checks an optional max_retries, where unset takes the driver's
// default and 0 means none (a pointer, so that 0 can say what it means).
func (c *ConfigErrors) Retries(key string, v *int) {
	if v != nil && *v < 0 {
		c.Add(key, "must be 0 (no retries) or positive")
	}
}

// RetryCount is an optional max_retries with def for unset.
func RetryCount(v *int, def int) int {
	if v == nil {
		return def
	}
	return *v
}
