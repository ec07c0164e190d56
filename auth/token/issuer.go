package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stratus-registry/stratus/auth/scope"
)

// Issuer signs the built-in endpoint's access and refresh tokens. Every
// replica configured with the same key verifies every other's tokens.
type Issuer struct {
	key        crypto.Signer
	method     jwt.SigningMethod
	kid        string
	x5c        []string
	issuer     string
	service    string
	ttl        time.Duration
	refreshTTL time.Duration
	refresh    *jwt.Parser
	now        func() time.Time
}

// Issued is a signed access token.
type Issued struct {
	Token     string
	ExpiresIn time.Duration
	IssuedAt  time.Time
}

// NewIssuer loads issuer_key (and issuer_certificate), or generates an
// ephemeral ES256 key when none is configured, which is logged: tokens
// then die with the process and no other replica accepts them. now nil
// means time.Now.
func NewIssuer(cfg Config, log *slog.Logger, now func() time.Time) (*Issuer, error) {
	if cfg.Issuer == "" || cfg.Service == "" {
		return nil, fmt.Errorf("%sissuer and %sservice are required", prefix, prefix)
	}
	if now == nil {
		now = time.Now
	}
	i := &Issuer{issuer: cfg.Issuer, service: cfg.Service, ttl: cfg.IssuerTTL, refreshTTL: cfg.IssuerRefreshTTL, now: now}
	var err error
	if cfg.IssuerKey == "" {
		if log != nil {
			log.Warn("auth.token.issuer_key is not set: signing with a key generated now; tokens die on restart and no other replica accepts them")
		}
		if i.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("generate issuer key: %w", err)
		}
	} else if i.key, err = loadPrivateKey(cfg.IssuerKey); err != nil {
		return nil, fmt.Errorf("%sissuer_key %s: %w", prefix, cfg.IssuerKey, err)
	}
	if i.method, err = methodFor(i.key.Public()); err != nil {
		return nil, fmt.Errorf("%sissuer_key %s: %w", prefix, cfg.IssuerKey, err)
	}
	if i.kid, err = thumbprint(i.key.Public()); err != nil {
		return nil, err
	}
	if cfg.IssuerCertificate != "" {
		if i.x5c, err = loadChain(cfg.IssuerCertificate, i.key.Public()); err != nil {
			return nil, fmt.Errorf("%sissuer_certificate %s: %w", prefix, cfg.IssuerCertificate, err)
		}
	}
	i.refresh = jwt.NewParser(
		jwt.WithValidMethods([]string{i.method.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Service),
		jwt.WithLeeway(cfg.leeway()),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	)
	return i, nil
}

// PublicKey is the key the Verifier must trust for this issuer's tokens.
func (i *Issuer) PublicKey() crypto.PublicKey { return i.key.Public() }

// Service is the aud of issued tokens.
func (i *Issuer) Service() string { return i.service }

// Issue signs an access token for subject ("" is anonymous) granting access.
func (i *Issuer) Issue(subject string, access []scope.Scope) (Issued, error) {
	now := i.now().Truncate(time.Second)
	c := claims{RegisteredClaims: i.registered(subject, now, i.ttl), Access: access}
	if c.Access == nil {
		c.Access = []scope.Scope{} // the spec's anonymous token still carries "access": []
	}
	raw, err := i.sign(c, "JWT")
	if err != nil {
		return Issued{}, err
	}
	return Issued{Token: raw, ExpiresIn: i.ttl, IssuedAt: now}, nil
}

// IssueRefresh signs a refresh token for subject. It grants nothing by
// itself: each use asks the policy again, so a policy change applies to
// holders of old refresh tokens too.
func (i *Issuer) IssueRefresh(subject string) (string, error) {
	now := i.now().Truncate(time.Second)
	return i.sign(claims{RegisteredClaims: i.registered(subject, now, i.refreshTTL), TokenUse: tokenUseRefresh}, refreshTyp)
}

// VerifyRefresh checks a refresh token this issuer (or a replica with the
// same key) signed and returns its subject.
func (i *Issuer) VerifyRefresh(raw string) (string, error) {
	if len(raw) > maxTokenSize {
		return "", fmt.Errorf("%w: refresh token longer than %d bytes", ErrBadCredentials, maxTokenSize)
	}
	var c claims
	tok, err := i.refresh.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != i.kid {
			return nil, fmt.Errorf("%w: not signed by this issuer's key", ErrUntrustedKey)
		}
		return i.key.Public(), nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadCredentials, classify(tok, err))
	}
	if typ, _ := tok.Header["typ"].(string); typ != refreshTyp || c.TokenUse != tokenUseRefresh || c.Subject == "" {
		return "", fmt.Errorf("%w: %w: not a refresh token", ErrBadCredentials, ErrWrongTokenType)
	}
	return c.Subject, nil
}

func (i *Issuer) registered(subject string, now time.Time, ttl time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    i.issuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{i.service},
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ID:        newJTI(),
	}
}

func (i *Issuer) sign(c claims, typ string) (string, error) {
	t := jwt.NewWithClaims(i.method, c)
	t.Header["typ"] = typ
	t.Header["kid"] = i.kid
	if len(i.x5c) > 0 {
		t.Header["x5c"] = i.x5c
	}
	raw, err := t.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return raw, nil
}

// newJTI is a random token ID; crypto/rand does not fail on supported
// platforms, and the ID is not security-relevant here beyond uniqueness.
func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// methodFor is the signing method for a key, checking it is one the
// Verifier accepts.
func methodFor(pub crypto.PublicKey) (jwt.SigningMethod, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	switch pub.(type) {
	case *rsa.PublicKey:
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PublicKey:
		return jwt.SigningMethodES256, nil
	default:
		return jwt.SigningMethodEdDSA, nil
	}
}

// loadPrivateKey reads a PEM private key: PKCS #8, SEC 1 (EC) or PKCS #1
// (RSA).
func loadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePrivateKey(data)
}

func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
}

// loadChain reads a PEM certificate chain, leaf first, whose leaf must
// hold pub, and returns it as x5c values.
func loadChain(path string, pub crypto.PublicKey) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, err
	}
	if k, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return nil, errors.New("the first certificate is not for issuer_key")
	}
	x5c := make([]string, len(certs))
	for i, c := range certs {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return x5c, nil
}
