package registry

import (
	"context"
	"net/http"
)

// Action is what a request does to a repository, in the terms of the
// Docker token scopes ("repository:<name>:pull,push,delete").
type Action string

// The actions a route needs.
const (
	ActionPull    Action = "pull"
	ActionPush    Action = "push"
	ActionDelete  Action = "delete"
	ActionCatalog Action = "catalog" // registry:catalog:*
	// ActionLogin is the API version check (GET /v2/): no resource, only
	// "are these credentials good" (the spec answers 401 to anonymous
	// callers of a registry with auth).
	ActionLogin Action = "login"
)

// Access is what one request asks to do.
type Access struct {
	// Repository is empty for the catalog.
	Repository string
	Action     Action
}

// Authorizer decides a request before its handler runs. It returns nil to
// allow, or an error answered as is: an *apiError with code UNAUTHORIZED
// (with a WWW-Authenticate header) or DENIED. It is the hook point the
// security work fills; until then every request is allowed.
type Authorizer interface {
	Authorize(ctx context.Context, r *http.Request, a Access) error
}

// PullFilter is an Authorizer that can also tell, without answering a
// request, whether the caller may pull a repository; the catalog lists
// only those. An Authorizer without it lists every repository.
type PullFilter interface {
	CanPull(ctx context.Context, r *http.Request, repository string) bool
}

// Unauthorized is the answer to a caller without (valid) credentials:
// 401 UNAUTHORIZED with challenge as its WWW-Authenticate header.
func Unauthorized(challenge, message string) error {
	return newError(codeUnauthorized, "%s", message).withHeader("WWW-Authenticate", challenge)
}

// Denied is the answer to an authenticated caller that may not do what it
// asked: 403 DENIED.
func Denied(message string) error {
	return newError(codeDenied, "%s", message)
}

// allowAll is the Authorizer of a registry without auth.
type allowAll struct{}

func (allowAll) Authorize(context.Context, *http.Request, Access) error { return nil }

// accessFor is what a request to rt with method needs.
func accessFor(rt route, method string) Access {
	a := Access{Repository: rt.name, Action: ActionPull}
	switch {
	case rt.kind == routeBase:
		a = Access{Action: ActionLogin}
	case rt.kind == routeCatalog:
		a = Access{Action: ActionCatalog}
	case method == http.MethodDelete && rt.kind != routeUpload:
		a.Action = ActionDelete
	case method == http.MethodPut, method == http.MethodPost, method == http.MethodPatch,
		rt.kind == routeUpload:
		a.Action = ActionPush
	}
	return a
}
