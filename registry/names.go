package registry

import (
	"encoding"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// maxNameLength bounds repository names (content.MaxNameLength).
const maxNameLength = content.MaxNameLength

func validName(name string) bool { return content.ValidName(name) }

func validTag(tag string) bool { return content.ValidTag(tag) }

// errDigestAlgorithm: a digest of an algorithm Stratus does not verify.
var errDigestAlgorithm = digest.ErrDigestUnsupported

// ParseDigest validates s as "<alg>:<hex>" for a supported algorithm
// (content.Algorithms).
func ParseDigest(s string) (digest.Digest, error) { return content.ParseDigest(s) }

// newHash returns a hash for alg whose state can be marshalled.
func newHash(alg digest.Algorithm) (hash.Hash, error) {
	if !content.SupportedAlgorithm(alg) {
		return nil, fmt.Errorf("%w: %q", errDigestAlgorithm, alg)
	}
	return alg.Hash(), nil
}

// restoreHash rebuilds a hash from a state saved with marshalHash; an empty
// state is a fresh hash.
func restoreHash(alg digest.Algorithm, state []byte) (hash.Hash, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	if len(state) == 0 {
		return h, nil
	}
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok {
		return nil, fmt.Errorf("%s hash state cannot be restored", alg)
	}
	if err := u.UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore %s hash state: %w", alg, err)
	}
	return h, nil
}

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("hash state cannot be saved")
	}
	return m.MarshalBinary()
}

// computeDigest hashes b with alg (sha256 for an unsupported one).
func computeDigest(alg digest.Algorithm, b []byte) digest.Digest {
	if !content.SupportedAlgorithm(alg) {
		alg = digest.SHA256
	}
	return alg.FromBytes(b)
}

// Reference is the <reference> of a manifest URL: a tag or a digest.
type Reference struct {
	Tag    string
	Digest digest.Digest
}

func (r Reference) String() string {
	if r.Tag != "" {
		return r.Tag
	}
	return r.Digest.String()
}

// ParseReference parses a manifest reference: a digest when it contains a
// colon, a tag otherwise.
func ParseReference(s string) (Reference, error) {
	if strings.Contains(s, ":") {
		d, err := ParseDigest(s)
		if err != nil {
			return Reference{}, err
		}
		return Reference{Digest: d}, nil
	}
	if !validTag(s) {
		return Reference{}, fmt.Errorf("tag %q: want [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", s)
	}
	return Reference{Tag: s}, nil
}
