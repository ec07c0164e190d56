package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Signing algorithms a token may use. HMAC is absent on purpose: with it,
// anyone holding a public key could forge tokens with that key's bytes.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

var validMethods = []string{algRS256, algES256, algEdDSA}

// minRSABits is the smallest RSA modulus accepted for signing keys.
const minRSABits = 2048

// trustedKey is a public key tokens may be signed with.
type trustedKey struct {
	pub crypto.PublicKey
	// alg is the key's declared algorithm (a JWK's "alg"); empty means
	// whatever its type allows.
	alg string
}

// keySet indexes trusted keys by every name a token may call them: the
// kid they were published under, their RFC 7638 thumbprint, and for
// certificate keys the libtrust key ID that Distribution-era token servers
// (docker_auth and the like) put in kid.
type keySet struct {
	byKID   map[string]trustedKey
	byThumb map[string]trustedKey
}

func newKeySet() *keySet {
	return &keySet{byKID: map[string]trustedKey{}, byThumb: map[string]trustedKey{}}
}

func (s *keySet) len() int { return len(s.byThumb) }

// add trusts pub under kid (if any) and its thumbprint.
func (s *keySet) add(kid string, k trustedKey) error {
	if err := checkPublicKey(k.pub); err != nil {
		return err
	}
	tp, err := thumbprint(k.pub)
	if err != nil {
		return err
	}
	s.byThumb[tp] = k
	s.byKID[tp] = k
	if kid != "" {
		s.byKID[kid] = k
	}
	return nil
}

// addCertificate trusts a root bundle certificate's key, also under its
// libtrust key ID.
func (s *keySet) addCertificate(cert *x509.Certificate) error {
	k := trustedKey{pub: cert.PublicKey}
	if err := s.add("", k); err != nil {
		return err
	}
	id, err := libtrustKeyID(cert.PublicKey)
	if err != nil {
		return err
	}
	s.byKID[id] = k
	return nil
}

func (s *keySet) lookupKID(kid string) (trustedKey, bool) {
	k, ok := s.byKID[kid]
	return k, ok
}

func (s *keySet) lookupThumb(tp string) (trustedKey, bool) {
	k, ok := s.byThumb[tp]
	return k, ok
}

// checkPublicKey admits only the key types the allowed algorithms use.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits: at least %d required", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("EC key on %s: only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T (want RSA, EC P-256 or Ed25519)", pub)
	}
	return nil
}

// keyFitsAlg reports whether a token signed with alg may use key k.
func keyFitsAlg(k trustedKey, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch k.pub.(type) {
	case *rsa.PublicKey:
		return alg == algRS256
	case *ecdsa.PublicKey:
		return alg == algES256
	case ed25519.PublicKey:
		return alg == algEdDSA
	}
	return false
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url without padding.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	b, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// libtrustKeyID is docker/libtrust's key ID: the SHA-256 of the DER
// public key, cut to 240 bits, base32, in twelve colon-separated groups.
func libtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("libtrust key id: %w", err)
	}
	sum := sha256.Sum256(der)
	enc := base32.StdEncoding.EncodeToString(sum[:30])
	groups := make([]string, 0, len(enc)/4)
	for i := 0; i < len(enc); i += 4 {
		groups = append(groups, enc[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}

// maxJWKSSize bounds a key set file or response.
const maxJWKSSize = 1 << 20

// parseJWKS reads a JSON Web Key Set. Keys this verifier cannot use
// (encryption keys, symmetric secrets, other curves) are skipped and
// named in skipped, so that one exotic key in an IdP's set does not
// lock everybody out; a set with no usable key at all is an error.
func parseJWKS(data []byte) (set *keySet, skipped []string, err error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("key set: %w", err)
	}
	set = newKeySet()
	for i, msg := range raw.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(msg); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if reason := unusableJWK(&jwk); reason != "" {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %s", i, jwk.KeyID, reason))
			continue
		}
		if err := set.add(jwk.KeyID, trustedKey{pub: jwk.Key, alg: jwk.Algorithm}); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, jwk.KeyID, err))
		}
	}
	if set.len() == 0 {
		return nil, skipped, fmt.Errorf("key set has no usable signing key (%d keys, skipped: %s)", len(raw.Keys), strings.Join(skipped, "; "))
	}
	return set, skipped, nil
}

func unusableJWK(jwk *jose.JSONWebKey) string {
	switch {
	case !jwk.IsPublic():
		return "not a public key"
	case jwk.Use != "" && jwk.Use != "sig":
		return fmt.Sprintf("use %q, not sig", jwk.Use)
	case jwk.Algorithm != "" && !slices.Contains(validMethods, jwk.Algorithm):
		return fmt.Sprintf("algorithm %q not accepted", jwk.Algorithm)
	}
	return ""
}

// parseCertificates reads every CERTIFICATE block of a PEM bundle.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}
