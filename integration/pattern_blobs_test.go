package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
)

// patternReader generates n deterministic bytes without holding them.
type patternReader struct {
	rng       *rand.ChaCha8
	remaining int64
}

func newPattern(seed byte, n int64) *patternReader {
	var s [32]byte
	s[0] = seed
	return &patternReader{rng: rand.NewChaCha8(s), remaining: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.remaining {
		b = b[:p.remaining]
	}
	p.rng.Read(b)
	p.remaining -= int64(len(b))
	return len(b), nil
}

func patternDigest(seed byte, n int64) string {
	h := sha256.New()
	io.Copy(h, newPattern(seed, n))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// chunkedPush uploads n pattern bytes in chunk-sized PATCHes, each sent to
// the next base URL in turn, and finishes with PUT ?digest=.
func chunkedPush(t *testing.T, bases []string, repo string, seed byte, n, chunk int64) string {
	t.Helper()
	dgst := patternDigest(seed, n)
	resp := httpDo(t, "POST", bases[0]+"/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST: %s", resp.Status)
	}
	up := &patchUpload{loc: resp.Header.Get("Location"), src: newPattern(seed, n), size: n, buf: make([]byte, chunk)}
	i := 0
	for up.off < n {
		up.patch(t, bases[i%len(bases)], "")
		i++
	}
	if r := httpDo(t, "PUT", bases[i%len(bases)]+up.loc+"?digest="+dgst, nil); r.StatusCode != 201 {
		t.Fatalf("PUT: %s", r.Status)
	}
	return dgst
}

// patchUpload is a chunked upload of a pattern under way.
type patchUpload struct {
	loc  string // the upload's Location, as the last answer gave it
	src  io.Reader
	off  int64 // bytes sent
	size int64
	buf  []byte // one chunk
}

// patch sends the next chunk to base; who names the process in failures.
func (u *patchUpload) patch(t *testing.T, base, who string) {
	t.Helper()
	m, _ := io.ReadFull(u.src, u.buf[:min(int64(len(u.buf)), u.size-u.off)])
	r := httpDo(t, "PATCH", base+u.loc, u.buf[:m], "Content-Range", fmt.Sprintf("%d-%d", u.off, u.off+int64(m)-1))
	if r.StatusCode != 202 {
		t.Fatalf("PATCH at %d%s: %s", u.off, who, r.Status)
	}
	if l := r.Header.Get("Location"); l != "" {
		u.loc = l
	}
	u.off += int64(m)
}

// verifyStream pulls a blob and checks its digest without buffering it.
func verifyStream(t *testing.T, url, dgst string, n int64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s after %d bytes: %v", url, resp.Status, got, err)
	}
	if d := "sha256:" + hex.EncodeToString(h.Sum(nil)); d != dgst || got != n {
		t.Fatalf("pulled %d bytes with digest %s, want %d bytes %s", got, d, n, dgst)
	}
}
