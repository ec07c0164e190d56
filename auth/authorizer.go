package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/stratus-registry/stratus/auth/policy"
	"github.com/stratus-registry/stratus/auth/scope"
	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/registry"
)

// PasswordChecker checks a user name and password; *htpasswd.File is one.
type PasswordChecker interface {
	Authenticate(ctx context.Context, user, password string) error
}

// TokenVerifier checks a bearer token and returns its subject and the
// access it grants; auth/token's Verifier is one.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (subject string, access []scope.Scope, err error)
}

// ErrNoPasswords is Authenticate's answer when no htpasswd file is set.
var ErrNoPasswords = errors.New("auth: no password file is configured")

// Options configure an Authorizer. With Tokens set it runs in token mode:
// it accepts only bearer tokens, grants what their access claim says, and
// challenges with Bearer realm=Realm (the token endpoint) and Service.
// Otherwise it accepts Basic credentials checked by Passwords and
// challenges with Basic realm=Realm.
type Options struct {
	Realm     string
	Service   string
	Passwords PasswordChecker
	Tokens    TokenVerifier
	Policy    *policy.Policy
	Auditor   *Auditor
	Logger    *slog.Logger
}

// Authorizer authenticates requests and decides them with the policy. It
// implements registry.Authorizer and registry.PullFilter. Its decisions
// never depend on whether a repository exists: they happen before any
// handler reads the store, so a missing repository and a forbidden one
// get the same answer.
type Authorizer struct {
	realm, service string
	passwords      PasswordChecker
	tokens         TokenVerifier
	policy         atomic.Pointer[policy.Policy]
	audit          *Auditor
	logger         *slog.Logger
}

// New builds an Authorizer. Passwords or Tokens is required; Policy nil
// is the open policy (authenticated users may do everything).
func New(opts Options) (*Authorizer, error) {
	if opts.Passwords == nil && opts.Tokens == nil {
		return nil, errors.New("auth: a password file or a token verifier is required")
	}
	if opts.Realm == "" {
		return nil, errors.New("auth: a realm is required")
	}
	a := &Authorizer{realm: opts.Realm, service: opts.Service, passwords: opts.Passwords, tokens: opts.Tokens,
		audit: opts.Auditor, logger: opts.Logger}
	if a.audit == nil {
		a.audit = NewAuditor(nil)
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	p := opts.Policy
	if p == nil {
		var err error
		if p, err = policy.New(policy.Config{}); err != nil {
			return nil, err
		}
	}
	a.policy.Store(p)
	return a, nil
}

// SetPolicy replaces the policy for the requests that follow.
func (a *Authorizer) SetPolicy(p *policy.Policy) { a.policy.Store(p) }

// tokenMode reports whether bearer tokens are what the registry accepts.
func (a *Authorizer) tokenMode() bool { return a.tokens != nil }

// Grant is what of asked the policy allows subject (the built-in token
// issuer grants exactly this).
func (a *Authorizer) Grant(_ context.Context, subject string, asked []scope.Scope) []scope.Scope {
	return a.policy.Load().Grant(subject, asked)
}

// Authenticate checks a user name and password against the htpasswd file
// (for the built-in token issuer). A failure is audited.
func (a *Authorizer) Authenticate(ctx context.Context, user, password string) error {
	if a.passwords == nil {
		return ErrNoPasswords
	}
	if err := a.passwords.Authenticate(ctx, user, password); err != nil {
		a.audit.Record(ctx, Event{Action: ActionLoginFailed, User: user, Result: "denied", Reason: "bad user name or password"})
		return err
	}
	return nil
}

// state is what authentication found out about a request.
type state struct {
	id     Identity
	failed string // why the credentials were refused; "" when they were not
	bearer bool
	grants []scope.Scope // a bearer token's access claim
}

// Middleware authenticates each request once, before the handler, and puts
// the caller's Identity in its context (and in the access log's actor
// field), so that everything after it can tell who is asking. Decisions
// are Authorize's.
func (a *Authorizer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := a.resolve(r.Context(), r)
		ctx := context.WithValue(WithIdentity(r.Context(), st.id), stateKey, st)
		httpmw.SetActor(ctx, st.id.Name)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// stateOf is the request's authentication, from Middleware or done now.
func (a *Authorizer) stateOf(ctx context.Context, r *http.Request) state {
	if st, ok := ctx.Value(stateKey).(state); ok {
		return st
	}
	return a.resolve(ctx, r)
}

// resolve authenticates the request's credentials. Failures are audited
// here, once per request.
func (a *Authorizer) resolve(ctx context.Context, r *http.Request) state {
	creds, err := parseAuthorization(r.Header.Values("Authorization"))
	if err != nil {
		return a.failed(ctx, "", err.Error())
	}
	switch creds.scheme {
	case schemeBasic:
		if a.tokenMode() {
			// Token mode challenges for a bearer token; Basic credentials
			// sent anyway count for nothing, as if none were sent.
			return state{}
		}
		if err := a.passwords.Authenticate(ctx, creds.user, creds.password); err != nil {
			return a.failed(ctx, creds.user, "bad user name or password")
		}
		return state{id: Identity{Name: creds.user, Groups: a.policy.Load().Groups(creds.user)}}
	case schemeBearer:
		if !a.tokenMode() {
			return a.failed(ctx, "", "bearer token sent to a registry that uses Basic authentication")
		}
		subject, access, err := a.tokens.Verify(ctx, creds.token)
		if err != nil {
			// The reason stays generic in the audit line; the verifier's
			// error (which never quotes the token) goes to debug.
			a.logger.Debug("bearer token refused", "err", err)
			return a.failed(ctx, "", "invalid token")
		}
		return state{id: Identity{Name: subject, Groups: a.policy.Load().Groups(subject)}, bearer: true, grants: access}
	}
	return state{}
}

func (a *Authorizer) failed(ctx context.Context, user, reason string) state {
	a.audit.Record(ctx, Event{Action: ActionLoginFailed, User: user, Result: "denied", Reason: reason})
	return state{failed: reason}
}

// Authorize implements registry.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, r *http.Request, acc registry.Access) error {
	st := a.stateOf(ctx, r)
	if st.failed != "" {
		return registry.Unauthorized(a.challenge(acc, ErrorInvalidToken), "invalid credentials")
	}
	if acc.Action == registry.ActionLogin {
		if st.id.Anonymous() {
			return registry.Unauthorized(a.challenge(acc, ""), "authentication required")
		}
		return nil
	}
	if a.allows(st, acc) {
		return nil
	}
	ctx = WithIdentity(ctx, st.id)
	a.audit.Record(ctx, Event{Action: ActionDenied, Repository: acc.Repository, Result: "denied", Reason: string(acc.Action)})
	msg := deniedMessage(acc)
	switch {
	case st.id.Anonymous():
		return registry.Unauthorized(a.challenge(acc, ""), "authentication required: "+msg)
	case a.tokenMode():
		return registry.Unauthorized(a.challenge(acc, ErrorInsufficientScope), "insufficient scope: "+msg)
	}
	return registry.Denied(msg)
}

// CanPull implements registry.PullFilter, for the catalog. A bearer token
// lists what it grants pull on, plus what the policy lets its subject
// pull (a catalog token rarely names every repository).
func (a *Authorizer) CanPull(ctx context.Context, r *http.Request, name string) bool {
	st := a.stateOf(ctx, r)
	if st.failed != "" {
		return false
	}
	pull := registry.Access{Repository: name, Action: registry.ActionPull}
	if st.bearer && grantsAccess(st.grants, pull) {
		return true
	}
	return a.policy.Load().Allows(st.id.Name, scope.TypeRepository, name, scope.ActionPull)
}

// allows decides an authenticated request: by the token's grants in token
// mode, by the policy otherwise (and for callers without a token).
func (a *Authorizer) allows(st state, acc registry.Access) bool {
	if st.bearer {
		return grantsAccess(st.grants, acc)
	}
	typ, name, action := resourceOf(acc)
	return a.policy.Load().Allows(st.id.Name, typ, name, action)
}

func grantsAccess(grants []scope.Scope, acc registry.Access) bool {
	typ, name, action := resourceOf(acc)
	for _, g := range grants {
		if g.Type == typ && g.Name == name && g.Allows(action) {
			return true
		}
	}
	return false
}

// resourceOf is the token-spec resource and action a request needs.
func resourceOf(acc registry.Access) (typ, name, action string) {
	if acc.Action == registry.ActionCatalog {
		return scope.TypeRegistry, scope.CatalogName, scope.ActionAll
	}
	return scope.TypeRepository, acc.Repository, string(acc.Action)
}

// challenge is the WWW-Authenticate value for a refused request.
func (a *Authorizer) challenge(acc registry.Access, errorCode string) string {
	if !a.tokenMode() {
		return BasicChallenge(a.realm)
	}
	return BearerChallenge(a.realm, a.service, ScopesFor(acc), errorCode)
}

// ScopesFor is what a challenge asks a client to get a token for. A push
// asks for pull too: pushing reads blobs and manifests back (HEAD), and
// docker asks its token endpoint for both anyway.
func ScopesFor(acc registry.Access) []scope.Scope {
	switch acc.Action {
	case registry.ActionLogin:
		return nil
	case registry.ActionCatalog:
		return []scope.Scope{{Type: scope.TypeRegistry, Name: scope.CatalogName, Actions: []string{scope.ActionAll}}}
	case registry.ActionPush:
		return []scope.Scope{{Type: scope.TypeRepository, Name: acc.Repository, Actions: []string{scope.ActionPull, scope.ActionPush}}}
	}
	return []scope.Scope{{Type: scope.TypeRepository, Name: acc.Repository, Actions: []string{string(acc.Action)}}}
}

// deniedMessage says what was refused, in the same words whether or not
// the repository exists.
func deniedMessage(acc registry.Access) string {
	if acc.Action == registry.ActionCatalog {
		return "listing the catalog is not allowed"
	}
	return fmt.Sprintf("%s access to repository %s is not allowed", acc.Action, acc.Repository)
}
