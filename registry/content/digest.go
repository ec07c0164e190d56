package content

import (
	// Register the hashes go-digest's algorithm registry resolves.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Algorithms are the digest algorithms Stratus verifies: the two the
// distribution spec names. go-digest's registry also knows sha384, which
// no client uses; refusing it keeps the set the spec's conformance suite
// tests. Both hashes implement encoding.BinaryMarshaler, which is what lets
// an upload's hash state travel between replicas.
var Algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// SupportedAlgorithm reports whether alg is one of Algorithms.
func SupportedAlgorithm(alg digest.Algorithm) bool {
	for _, a := range Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// ParseDigest validates s as "<alg>:<hex>" (lowercase hex of the right
// length) for a supported algorithm. An unknown algorithm wraps
// digest.ErrDigestUnsupported.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("digest %q: %w", s, err)
	}
	if !SupportedAlgorithm(d.Algorithm()) {
		return "", fmt.Errorf("digest %q: %w (sha256 and sha512 are)", s, digest.ErrDigestUnsupported)
	}
	return d, nil
}
