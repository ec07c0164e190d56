package token

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stratus-registry/stratus/auth/scope"
)

// Grant types of a token request. The first two are the OAuth2 POST
// grants; the others are the Docker token spec's GET, with or without
// Basic credentials.
const (
	grantPassword  = "password"
	grantRefresh   = "refresh_token"
	grantBasic     = "basic"
	grantAnonymous = "anonymous"
)

// Limits on one token request.
const (
	maxFormSize = 64 << 10
	maxScopes   = 64
)

// tokenRequest is a parsed GET or POST to the token endpoint.
type tokenRequest struct {
	grant        string
	user         string
	password     string
	refreshToken string
	clientID     string
	scopes       []scope.Scope
	// offline asks for a refresh token too.
	offline bool
}

// requestError is a refused request, in OAuth2 terms (RFC 6749 §5.2).
type requestError struct {
	status      int
	code        string
	description string
}

func (e *requestError) Error() string { return e.code + ": " + e.description }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

// parseRequest reads a token request for service; a request naming
// another service is refused, since its tokens would not be ours to give.
func parseRequest(r *http.Request, service string) (tokenRequest, error) {
	var req tokenRequest
	var params url.Values
	var err error
	switch r.Method {
	case http.MethodGet:
		params = r.URL.Query()
		req, err = parseGET(r, params)
	case http.MethodPost:
		if params, err = readForm(r); err == nil {
			req, err = parsePOST(params)
		}
	default:
		return req, &requestError{http.StatusMethodNotAllowed, "invalid_request", "use GET or POST"}
	}
	if err != nil {
		return req, err
	}
	if s := params.Get("service"); s != "" && s != service {
		return req, badRequest("service %q is not served here (this is %q)", s, service)
	}
	// Counted before parsing: merging scopes costs the square of their number.
	n := 0
	for _, v := range params["scope"] {
		n += len(strings.Fields(v))
	}
	if n > maxScopes {
		return req, &requestError{http.StatusBadRequest, "invalid_scope", fmt.Sprintf("more than %d scopes", maxScopes)}
	}
	if req.scopes, err = scope.ParseAll(params["scope"]...); err != nil {
		return req, &requestError{http.StatusBadRequest, "invalid_scope", err.Error()}
	}
	return req, nil
}

// parseGET is the Docker token spec's request: Basic credentials (or none,
// for an anonymous token) and query parameters.
func parseGET(r *http.Request, q url.Values) (tokenRequest, error) {
	req := tokenRequest{grant: grantAnonymous, clientID: q.Get("client_id")}
	if v := q.Get("offline_token"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, badRequest("offline_token %q is not true or false", v)
		}
		req.offline = b
	}
	if r.Header.Get("Authorization") == "" {
		return req, nil
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		return req, badRequest("the Authorization header must be Basic credentials")
	}
	if user == "" {
		return req, badRequest("Basic credentials without a user name")
	}
	if a := q.Get("account"); a != "" && a != user {
		return req, badRequest("account %q is not the user of the credentials", a)
	}
	req.grant, req.user, req.password = grantBasic, user, password
	return req, nil
}

// parsePOST is the OAuth2 form request (docker's refresh, containerd's
// login).
func parsePOST(form url.Values) (tokenRequest, error) {
	req := tokenRequest{grant: form.Get("grant_type"), clientID: form.Get("client_id")}
	if req.clientID == "" {
		return req, badRequest("client_id is required")
	}
	switch req.grant {
	case grantPassword:
		req.user, req.password = form.Get("username"), form.Get("password")
		if req.user == "" || req.password == "" {
			return req, badRequest("grant_type=password needs username and password")
		}
		req.offline = form.Get("access_type") == "offline"
	case grantRefresh:
		if req.refreshToken = form.Get("refresh_token"); req.refreshToken == "" {
			return req, badRequest("grant_type=refresh_token needs refresh_token")
		}
	case "":
		return req, badRequest("grant_type is required (password or refresh_token)")
	default:
		return req, &requestError{http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not password or refresh_token", req.grant)}
	}
	return req, nil
}

// readForm reads a bounded urlencoded body; query parameters do not count,
// so that credentials never travel in a URL that proxies log.
func readForm(r *http.Request) (url.Values, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, badRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxFormSize+1))
	if err != nil {
		return nil, badRequest("reading the form: %v", err)
	}
	if len(data) > maxFormSize {
		return nil, &requestError{http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("form larger than %d bytes", maxFormSize)}
	}
	form, err := url.ParseQuery(string(data))
	if err != nil {
		return nil, badRequest("malformed form: %v", err)
	}
	return form, nil
}
