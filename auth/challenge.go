package auth

import (
	"strings"

	"github.com/stratus-registry/stratus/auth/scope"
)

// The error values of a Bearer challenge (RFC 6750 §3.1).
const (
	// ErrorInvalidToken: the token is malformed, expired, not for this
	// service or not signed by a trusted key.
	ErrorInvalidToken = "invalid_token"
	// ErrorInsufficientScope: the token is good but does not grant what
	// the request needs. Docker asks for a new token on this answer.
	ErrorInsufficientScope = "insufficient_scope"
)

// BasicChallenge is the WWW-Authenticate value of an htpasswd registry:
// Basic realm="...".
func BasicChallenge(realm string) string {
	return "Basic realm=" + quote(realm)
}

// BearerChallenge is the WWW-Authenticate value of the Docker registry
// token specification: Bearer realm="...",service="...",scope="...",
// error="...". Several scopes are joined with a space in one scope
// parameter, as docker and containerd read it. Empty service, no scopes
// or an empty errorCode leave their parameter out.
func BearerChallenge(realm, service string, scopes []scope.Scope, errorCode string) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
	if service != "" {
		b.WriteString(",service=")
		b.WriteString(quote(service))
	}
	if len(scopes) > 0 {
		b.WriteString(",scope=")
		b.WriteString(quote(scope.Join(scopes)))
	}
	if errorCode != "" {
		b.WriteString(",error=")
		b.WriteString(quote(errorCode))
	}
	return b.String()
}

// quote makes an RFC 7230 quoted-string: backslash before '"' and '\'.
// Control characters cannot be represented and are dropped, so a realm
// from the configuration can never split the header.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
