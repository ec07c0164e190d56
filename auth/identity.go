// Package auth authenticates registry requests (Basic credentials checked
// against an htpasswd file, or bearer tokens checked by a TokenVerifier),
// authorizes them with the access policy (auth/policy) before any handler
// runs, answers the challenges clients expect, and writes the audit log.
//
// The registry only knows the registry.Authorizer hook; everything about
// who the caller is lives here. The caller's Identity travels in the
// request context so that the access log, the audit log, rate limits and
// webhooks can name the actor.
package auth

import "context"

// Identity is who made a request. The zero value is the anonymous caller.
type Identity struct {
	Name string
	// Groups are the policy groups the caller belongs to.
	Groups []string
}

// Anonymous reports whether the caller presented no credentials.
func (id Identity) Anonymous() bool { return id.Name == "" }

type ctxKey int

const (
	identityKey ctxKey = iota
	stateKey
)

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// IdentityFrom is the identity ctx carries; anonymous when none.
func IdentityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey).(Identity)
	return id
}
