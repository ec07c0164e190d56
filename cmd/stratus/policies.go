package main

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stratus-registry/stratus/policy/immutable"
	"github.com/stratus-registry/stratus/policy/retention"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/gc"
)

// PoliciesConfig is the `policies:` section: repository policies the
// registry enforces on tags.
type PoliciesConfig struct {
	// ImmutableTags are the create-only tag rules (policy/immutable).
	ImmutableTags ImmutableRules `yaml:"immutable_tags"`
	// Retention are the tag retention rules the GC pass applies
	// (policy/retention).
	Retention RetentionRules `yaml:"retention"`
}

// ImmutableRules also parse from one environment variable or --set value
// holding a YAML or JSON list
// (STRATUS_POLICIES_IMMUTABLE_TAGS='[{"repository":"prod/**","tags":["v*"]}]').
type ImmutableRules []immutable.Rule

// UnmarshalText parses a YAML (or JSON) list of rules.
func (l *ImmutableRules) UnmarshalText(b []byte) error {
	var out []immutable.Rule
	if err := decodeList(b, &out); err != nil {
		return fmt.Errorf("want a YAML or JSON list of immutable tag rules: %w", err)
	}
	*l = out
	return nil
}

// RetentionRules parse like ImmutableRules
// (STRATUS_POLICIES_RETENTION='[{"repository":"ci/**","keep_newest":10}]').
type RetentionRules []retention.Rule

// UnmarshalText parses a YAML (or JSON) list of rules.
func (l *RetentionRules) UnmarshalText(b []byte) error {
	var out []retention.Rule
	if err := decodeList(b, &out); err != nil {
		return fmt.Errorf("want a YAML or JSON list of retention rules: %w", err)
	}
	*l = out
	return nil
}

func decodeList(b []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(out)
}

// validate checks both rule lists, with key paths. grace is
// registry.gc.grace, which no untagged age may undercut (as for
// registry.gc.untagged_age).
func (c *PoliciesConfig) validate(grace time.Duration) error {
	errs := immutable.Validate("policies.immutable_tags", c.ImmutableTags)
	errs = append(errs, retention.Validate("policies.retention", c.Retention)...)
	for i, r := range c.Retention {
		if r.KeepUntaggedFor > 0 && r.KeepUntaggedFor < grace {
			errs = append(errs, fmt.Errorf("policies.retention[%d].keep_untagged_for: %s is shorter than the grace period %s", i, r.KeepUntaggedFor, grace))
		}
	}
	return errors.Join(errs...)
}

// policies are the built policies the registry is given.
type policies struct {
	tags      registry.TagPolicy
	retention gc.Retention
}

// build returns the policies of a validated section; nil fields where a
// list is empty, so the registry runs its no-op defaults.
func (c *PoliciesConfig) build() (policies, error) {
	var out policies
	var imm retention.Immutability
	if len(c.ImmutableTags) > 0 {
		p, err := immutable.New(c.ImmutableTags)
		if err != nil {
			return out, fmt.Errorf("policies.immutable_tags: %w", err)
		}
		imm, out.tags = p, p
	}
	if len(c.Retention) > 0 {
		// Retention asks the immutable rules: it never deletes a tag they
		// keep.
		p, err := retention.New(c.Retention, imm)
		if err != nil {
			return out, fmt.Errorf("policies.retention: %w", err)
		}
		out.retention = p.ForGC()
	}
	return out, nil
}
