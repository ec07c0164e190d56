package token

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stratus-registry/stratus/auth/scope"
)

// Authenticator checks a user's password (the htpasswd file); any error
// means the credentials are refused.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) error
}

// Granter is the access policy: what of asked subject ("" for anonymous)
// may have.
type Granter interface {
	Grant(ctx context.Context, subject string, asked []scope.Scope) []scope.Scope
}

// AuthenticatorFunc and GranterFunc adapt functions.
type (
	AuthenticatorFunc func(ctx context.Context, user, password string) error
	GranterFunc       func(ctx context.Context, subject string, asked []scope.Scope) []scope.Scope
)

func (f AuthenticatorFunc) Authenticate(ctx context.Context, user, password string) error {
	return f(ctx, user, password)
}

func (f GranterFunc) Grant(ctx context.Context, subject string, asked []scope.Scope) []scope.Scope {
	return f(ctx, subject, asked)
}

// Handler is the built-in token endpoint: GET per the Docker token spec
// (docker, skopeo, crane) and POST per its OAuth2 variant (containerd,
// docker's refresh). A token grants the intersection of what was asked and
// what the policy allows, never more.
type Handler struct {
	issuer *Issuer
	authn  Authenticator
	policy Granter
	log    *slog.Logger
}

// NewHandler serves tokens signed by issuer for users authn accepts, with
// the access policy grants.
func NewHandler(issuer *Issuer, authn Authenticator, policy Granter, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{issuer: issuer, authn: authn, policy: policy, log: log}
}

// response is the answer of both spec variants: token is the Docker
// spec's name, access_token the OAuth2 one.
type response struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize+1)
	req, err := parseRequest(r, h.issuer.Service())
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	subject, err := h.identify(r.Context(), req)
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	granted := scope.Intersect(req.scopes, h.policy.Grant(r.Context(), subject, req.scopes))
	issued, err := h.issuer.Issue(subject, granted)
	if err != nil {
		h.fail(w, r, req, err)
		return
	}
	resp := response{
		Token: issued.Token, AccessToken: issued.Token, TokenType: "Bearer",
		ExpiresIn: int64(issued.ExpiresIn / time.Second),
		IssuedAt:  issued.IssuedAt.UTC().Format(time.RFC3339),
		Scope:     scope.Join(granted),
	}
	if req.offline && subject != "" {
		if resp.RefreshToken, err = h.issuer.IssueRefresh(subject); err != nil {
			h.fail(w, r, req, err)
			return
		}
	}
	h.log.Info("token issued", "user", subject, "grant", req.grant, "client_id", req.clientID,
		"scope", resp.Scope, "refresh_token", resp.RefreshToken != "")
	writeJSON(w, http.StatusOK, resp)
}

// identify returns the subject the request proves to be ("" anonymous).
func (h *Handler) identify(ctx context.Context, req tokenRequest) (string, error) {
	switch req.grant {
	case grantAnonymous:
		return "", nil
	case grantRefresh:
		return h.issuer.VerifyRefresh(req.refreshToken)
	}
	if err := h.authn.Authenticate(ctx, req.user, req.password); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", errors.Join(ErrBadCredentials, err)
	}
	return req.user, nil
}

// fail answers with an OAuth2 error body; refused credentials also get a
// Basic challenge, so that a client knows to send (other) credentials.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, req tokenRequest, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re):
	case errors.Is(err, ErrBadCredentials):
		re = &requestError{http.StatusUnauthorized, "invalid_grant", "invalid credentials"}
		w.Header().Set("WWW-Authenticate", `Basic realm=`+strconv.Quote(h.issuer.Service()))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		re = &requestError{http.StatusServiceUnavailable, "temporarily_unavailable", "request cancelled or timed out"}
	default:
		re = &requestError{http.StatusInternalServerError, "server_error", "could not issue a token"}
	}
	if re.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, POST")
	}
	level := slog.LevelInfo
	if re.status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "token request refused", "status", re.status, "error", re.code,
		"grant", req.grant, "user", req.user, "client_id", req.clientID, "err", err)
	writeJSON(w, re.status, map[string]string{"error": re.code, "error_description": re.description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// RFC 6749 §5.1: token responses must not be cached.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
