package main

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"sync"
)

// tailLen is the unique suffix of every generated blob. The body before it
// is the same for every blob of one size, so its SHA-256 state is computed
// once and each blob's digest costs one block; the registry still has to
// hash (and store) every byte.
const tailLen = 32

// patternLen is deliberately not a power of two, so that the repetition of
// the pattern never lines up with chunk or page boundaries.
const patternLen = 1<<20 + 4099

// generator makes deterministic pseudo-random blobs of any size without
// holding them in memory: byte i of the body is pattern[i%patternLen].
type generator struct {
	pattern []byte

	mu     sync.Mutex
	states map[int64][]byte // size -> marshalled sha256 state after the body
}

func newGenerator(seed uint64) *generator {
	p := make([]byte, patternLen)
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', 't', 'r', 'a', 't', 'u', 's'}))
	for i := 0; i+8 <= len(p); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return &generator{pattern: p, states: make(map[int64][]byte)}
}

// blob is one generated blob: Size bytes, the last tailLen of them unique.
type blob struct {
	g      *generator
	Size   int64
	tail   [tailLen]byte
	Digest string
}

// newBlob returns the blob of the given size whose tail is derived from
// name; different names give different digests.
func (g *generator) newBlob(size int64, name string) (*blob, error) {
	if size < tailLen {
		return nil, fmt.Errorf("blob size %d below %d", size, tailLen)
	}
	b := &blob{g: g, Size: size, tail: sha256.Sum256([]byte(name))}
	state, err := g.bodyState(size - tailLen)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restoring hash state: %w", err)
	}
	h.Write(b.tail[:])
	b.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return b, nil
}

// bodyState hashes the common body of n bytes once per n.
func (g *generator) bodyState(n int64) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s, ok := g.states[n]; ok {
		return s, nil
	}
	h := sha256.New()
	for off := int64(0); off < n; {
		i := off % patternLen
		end := min(int64(patternLen), i+(n-off))
		h.Write(g.pattern[i:end])
		off += end - i
	}
	s, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("saving hash state: %w", err)
	}
	g.states[n] = s
	return s, nil
}

// ReadAt implements io.ReaderAt over the blob's bytes.
func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.Size {
		return 0, io.EOF
	}
	n := 0
	body := b.Size - tailLen
	for n < len(p) && off < b.Size {
		var c int
		if off < body {
			i := off % patternLen
			end := min(int64(patternLen), i+(body-off))
			c = copy(p[n:], b.g.pattern[i:end])
		} else {
			c = copy(p[n:], b.tail[off-body:])
		}
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Section is a seekable reader of n bytes from off.
func (b *blob) Section(off, n int64) *io.SectionReader { return io.NewSectionReader(b, off, n) }

// Reader reads the whole blob.
func (b *blob) Reader() *io.SectionReader { return b.Section(0, b.Size) }

// shaHasher is a sha256 that formats its digest the OCI way.
type shaHasher struct{ hash.Hash }

func newSHA() shaHasher { return shaHasher{sha256.New()} }

func (h shaHasher) digest() string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
