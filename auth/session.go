package auth

import (
	"context"

	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/registry"
)

// These hooks serve callers that authenticate users themselves, such as
// the web UI's session cookie, and then need the same decisions the API
// makes for that user.

// ChecksPasswords reports whether Authenticate can succeed at all: false
// with only an external token issuer, whose users have no password here.
func (a *Authorizer) ChecksPasswords() bool { return a.passwords != nil }

// CanUser reports whether the policy lets user ("" for anonymous) do
// action to repository, as Authorize decides a request without a token.
func (a *Authorizer) CanUser(_ context.Context, user, repository string, action registry.Action) bool {
	typ, name, act := resourceOf(registry.Access{Repository: repository, Action: action})
	return a.policy.Load().Allows(user, typ, name, act)
}

// WithSessionUser returns ctx carrying user ("" for anonymous) as the
// authenticated caller, so that Authorize, the audit log and webhooks
// treat a request made with it as that user's. The caller must have
// checked the user's credentials; the request's own Authorization header
// is ignored from then on.
func (a *Authorizer) WithSessionUser(ctx context.Context, user string) context.Context {
	var id Identity
	if user != "" {
		id = Identity{Name: user, Groups: a.policy.Load().Groups(user)}
	}
	ctx = context.WithValue(WithIdentity(ctx, id), stateKey, state{id: id})
	httpmw.SetActor(ctx, id.Name)
	return ctx
}
