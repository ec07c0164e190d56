package token

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// maxChainLength bounds an x5c chain (leaf and intermediates).
const maxChainLength = 8

// signingKey picks the key a token's signature must verify with, from its
// header: an x5c chain that verifies to the root bundle, else a kid naming
// a trusted key, else a jwk whose thumbprint is that of a trusted key. A
// key the header carries is never used because it is there: that was
// CVE-2025-24976 in Distribution, where any self-made jwk was believed.
func (v *Verifier) signingKey(ctx context.Context, t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string)
	var k trustedKey
	var err error
	switch {
	case t.Header["x5c"] != nil:
		k, err = v.chainKey(t.Header["x5c"])
	case t.Header["kid"] != nil:
		k, err = v.kidKey(ctx, t.Header["kid"])
	case t.Header["jwk"] != nil:
		k, err = v.jwkKey(ctx, t.Header["jwk"])
	default:
		err = fmt.Errorf("%w: the header names no key (kid, x5c or jwk)", ErrUntrustedKey)
	}
	if err != nil {
		return nil, err
	}
	if !keyFitsAlg(k, alg) {
		return nil, fmt.Errorf("%w: key of type %T cannot sign %s", ErrUntrustedKey, k.pub, alg)
	}
	return k.pub, nil
}

func (v *Verifier) kidKey(ctx context.Context, h any) (trustedKey, error) {
	kid, ok := h.(string)
	if !ok || kid == "" {
		return trustedKey{}, fmt.Errorf("%w: kid is not a string", ErrUntrustedKey)
	}
	if k, ok := v.static.lookupKID(kid); ok {
		return k, nil
	}
	if v.remote != nil {
		if k, ok := v.remote.lookup(ctx, kid, false); ok {
			return k, nil
		}
	}
	return trustedKey{}, fmt.Errorf("%w: unknown kid %q", ErrUntrustedKey, kid)
}

// jwkKey admits a header jwk only when it is a key trusted already.
func (v *Verifier) jwkKey(ctx context.Context, h any) (trustedKey, error) {
	raw, err := json.Marshal(h)
	if err != nil {
		return trustedKey{}, fmt.Errorf("%w: jwk: %w", ErrUntrustedKey, err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil || !jwk.IsPublic() {
		return trustedKey{}, fmt.Errorf("%w: jwk header is not a public key", ErrUntrustedKey)
	}
	tp, err := thumbprint(jwk.Key)
	if err != nil {
		return trustedKey{}, fmt.Errorf("%w: %w", ErrUntrustedKey, err)
	}
	if k, ok := v.static.lookupThumb(tp); ok {
		return k, nil
	}
	if v.remote != nil {
		if k, ok := v.remote.lookup(ctx, tp, true); ok {
			return k, nil
		}
	}
	return trustedKey{}, fmt.Errorf("%w: jwk header key (thumbprint %s) is not a trusted key", ErrUntrustedKey, tp)
}

// chainKey verifies an x5c chain to the root bundle and returns the leaf's
// key. The extended key usage is not constrained (as in Distribution: token
// signing has no EKU of its own), but a leaf whose key usage is declared
// must allow digital signatures.
func (v *Verifier) chainKey(h any) (trustedKey, error) {
	certs, err := parseX5C(h)
	if err != nil {
		return trustedKey{}, err
	}
	leaf := certs[0]
	// A key trusted on its own (the built-in issuer's) needs no chain.
	if tp, err := thumbprint(leaf.PublicKey); err == nil {
		if k, ok := v.static.lookupThumb(tp); ok {
			return k, nil
		}
	}
	if v.roots == nil {
		return trustedKey{}, fmt.Errorf("%w: x5c given but no rootcertbundle is configured", ErrCertificate)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: v.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return trustedKey{}, fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return trustedKey{}, fmt.Errorf("%w: leaf %s may not sign (no digitalSignature key usage)", ErrCertificate, leaf.Subject)
	}
	if err := checkPublicKey(leaf.PublicKey); err != nil {
		return trustedKey{}, fmt.Errorf("%w: leaf %s: %w", ErrCertificate, leaf.Subject, err)
	}
	return trustedKey{pub: leaf.PublicKey}, nil
}

// parseX5C decodes an x5c header: standard base64 DER, leaf first.
func parseX5C(h any) ([]*x509.Certificate, error) {
	list, ok := h.([]any)
	if !ok || len(list) == 0 || len(list) > maxChainLength {
		return nil, fmt.Errorf("%w: x5c must be a list of 1 to %d certificates", ErrCertificate, maxChainLength)
	}
	certs := make([]*x509.Certificate, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%w: x5c entry %d is not a string", ErrCertificate, i)
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c entry %d: %w", ErrCertificate, i, err)
		}
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: x5c entry %d: %w", ErrCertificate, i, err)
		}
	}
	return certs, nil
}
