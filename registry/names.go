package registry

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// maxNameLength bounds repository names. The spec sets no limit; 255 keeps
// every storage key (prefix + name + digest) well under object-store limits.
const maxNameLength = 255

// validName reports whether name matches the distribution spec's
// <name> grammar:
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//
// It is hand-written rather than a regexp so that it runs in linear time with
// no allocation on untrusted input, and so that the rule that no component
// starts with a separator (which the storage layout relies on: "_tags" can
// never be a name component) is explicit.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if alnum(c[i]) {
			i++
			continue
		}
		// A separator run: ".", "_", "__" or one or more "-".
		j := i
		for j < len(c) && !alnum(c[j]) {
			j++
		}
		sep := c[i:j]
		switch {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

func alnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

// validTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		b := tag[i]
		ok := alnum(b) || b >= 'A' && b <= 'Z' || b == '_' || i > 0 && (b == '.' || b == '-')
		if !ok {
			return false
		}
	}
	return true
}

// Digest is a validated content digest: a supported algorithm and its
// lowercase hex encoding of the right length.
type Digest struct {
	Alg string // "sha256" or "sha512"
	Hex string
}

func (d Digest) String() string { return d.Alg + ":" + d.Hex }

// IsZero reports whether d is the zero value (no digest).
func (d Digest) IsZero() bool { return d.Alg == "" }

var errDigestAlgorithm = errors.New("unsupported digest algorithm")

// algorithms lists the digest algorithms Stratus verifies, with the hex
// length of their output. Both hashes implement encoding.BinaryMarshaler,
// which is what lets an upload's hash state travel between replicas.
var algorithms = map[string]int{"sha256": 64, "sha512": 128}

// ParseDigest validates s as "<alg>:<hex>" for a supported algorithm.
func ParseDigest(s string) (Digest, error) {
	alg, hexPart, ok := strings.Cut(s, ":")
	if !ok || alg == "" || hexPart == "" {
		return Digest{}, fmt.Errorf("digest %q: want <algorithm>:<hex>", s)
	}
	n, known := algorithms[alg]
	if !known {
		return Digest{}, fmt.Errorf("digest %q: %w (sha256 and sha512 are)", s, errDigestAlgorithm)
	}
	if len(hexPart) != n {
		return Digest{}, fmt.Errorf("digest %q: %s needs %d hex characters", s, alg, n)
	}
	for i := 0; i < len(hexPart); i++ {
		if c := hexPart[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return Digest{}, fmt.Errorf("digest %q: encoding must be lowercase hex", s)
		}
	}
	return Digest{Alg: alg, Hex: hexPart}, nil
}

// newHash returns a hash for alg whose state can be marshalled.
func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("%w: %q", errDigestAlgorithm, alg)
}

// restoreHash rebuilds a hash from a state saved with marshalHash; an empty
// state is a fresh hash.
func restoreHash(alg string, state []byte) (hash.Hash, error) {
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

func digestOf(h hash.Hash, alg string) Digest {
	return Digest{Alg: alg, Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// computeDigest hashes b with alg.
func computeDigest(alg string, b []byte) Digest {
	h, err := newHash(alg)
	if err != nil {
		h, alg = sha256.New(), "sha256"
	}
	h.Write(b)
	return digestOf(h, alg)
}

// Reference is the <reference> of a manifest URL: a tag or a digest.
type Reference struct {
	Tag    string
	Digest Digest
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
