package auth

import (
	"encoding/base64"
	"errors"
	"strings"
)

// scheme is how a request presents credentials.
type scheme int

const (
	schemeNone scheme = iota
	schemeBasic
	schemeBearer
)

// credentials are what an Authorization header carries. They never reach
// a log: only the user name does, in audit lines about failed logins.
type credentials struct {
	scheme   scheme
	user     string
	password string
	token    string
}

// maxAuthorization bounds the header; a JWT with an x5c chain of a few
// certificates fits well within it.
const maxAuthorization = 16 << 10

var errMalformed = errors.New("malformed Authorization header")

// parseAuthorization reads the request's Authorization header values
// ("Basic base64(user:password)" or "Bearer token"). No value is
// anonymous; several values, an unknown scheme, bad base64 or a token with
// characters outside RFC 6750's b64token are malformed. The error never
// quotes the header.
func parseAuthorization(values []string) (credentials, error) {
	if len(values) == 0 {
		return credentials{}, nil
	}
	if len(values) > 1 {
		return credentials{}, errMalformed
	}
	v := values[0]
	if len(v) > maxAuthorization {
		return credentials{}, errMalformed
	}
	name, param, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return credentials{}, errMalformed
	}
	param = strings.TrimSpace(param)
	switch {
	case strings.EqualFold(name, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(param)
		if err != nil {
			return credentials{}, errMalformed
		}
		user, password, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" {
			return credentials{}, errMalformed
		}
		return credentials{scheme: schemeBasic, user: user, password: password}, nil
	case strings.EqualFold(name, "Bearer"):
		if !b64token(param) {
			return credentials{}, errMalformed
		}
		return credentials{scheme: schemeBearer, token: param}, nil
	}
	return credentials{}, errMalformed
}

// b64token is RFC 6750's token syntax: 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
