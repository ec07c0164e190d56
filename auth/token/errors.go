package token

import "errors"

// Every verification failure wraps ErrInvalidToken, so a caller that only
// needs "reject with invalid_token" tests one value, while the more precise
// sentinels below say in the log why (the token itself is never logged).
var (
	ErrInvalidToken = errors.New("invalid token")

	ErrExpired         = errors.New("token expired")
	ErrNotYetValid     = errors.New("token not yet valid")
	ErrWrongAudience   = errors.New("token audience does not include this service")
	ErrWrongIssuer     = errors.New("token issuer is not the configured issuer")
	ErrBadSignature    = errors.New("token signature does not verify")
	ErrAlgorithm       = errors.New("token signing algorithm not allowed")
	ErrUntrustedKey    = errors.New("token signing key is not trusted")
	ErrCertificate     = errors.New("token certificate chain does not verify")
	ErrWrongTokenType  = errors.New("token is of the wrong type")
	ErrMalformedClaims = errors.New("token claims are malformed")
)

// ErrBadCredentials is what the token endpoint reports (and logs) when the
// user name, password or refresh token is wrong.
var ErrBadCredentials = errors.New("invalid credentials")
