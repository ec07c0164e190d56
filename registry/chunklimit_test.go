package registry

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking/memory"
)

// TestMaxChunkSize: upload bodies over registry.max_chunk_size get 413
// SIZE_INVALID whether the length is announced or the body is chunked, the
// session stays where it was, nothing is stored, and smaller chunks of the
// same blob go through.
func TestMaxChunkSize(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	tr, _ := newTestRegistryWith(t, Config{MaxChunkSize: 1024}, locks)
	blob := bytes.Repeat([]byte("0123456789abcdef"), 128) // 2 KiB
	d := digest.FromBytes(blob)

	start := func() string {
		r := tr.do("POST", "/v2/repo/blobs/uploads/", nil)
		tr.expect(r, http.StatusAccepted, "")
		return strings.TrimPrefix(r.header.Get("Location"), tr.srv.URL)
	}
	tests := []struct {
		name    string
		method  string
		path    func() string
		chunked bool
	}{
		{"PATCH with Content-Length", "PATCH", start, false},
		{"chunked PATCH", "PATCH", start, true},
		{"final PUT with the body", "PUT", func() string { return withQuery(start(), "digest="+d.String()) }, false},
		{"monolithic POST", "POST", func() string { return "/v2/repo/blobs/uploads/?digest=" + d.String() }, false},
		{"chunked monolithic POST", "POST", func() string { return "/v2/repo/blobs/uploads/?digest=" + d.String() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr.t = t
			before := len(tr.keys())
			path := tt.path()
			r := tr.send(tt.method, path, blob, tt.chunked, "Content-Type", "application/octet-stream")
			tr.expect(r, http.StatusRequestEntityTooLarge, codeSizeInvalid)
			if !strings.Contains(string(r.body), "registry.max_chunk_size") {
				t.Errorf("message does not name the limit: %s", r.body)
			}
			if after := len(tr.keys()); after != before {
				t.Errorf("store went from %d to %d keys after a refused body", before, after)
			}
			tr.expect(tr.do("HEAD", "/v2/repo/blobs/"+d.String(), nil), http.StatusNotFound, "")
			if tt.method == "PATCH" {
				st := tr.do("GET", path, nil)
				tr.expect(st, http.StatusNoContent, "")
				if got := st.header.Get("Range"); got != "0-0" {
					t.Errorf("session moved after a refused chunk: Range %q", got)
				}
			}
		})
	}

	t.Run("chunks under the limit", func(t *testing.T) {
		tr.t = t
		loc := start()
		r := tr.do("PATCH", loc, blob[:1024], "Content-Range", "0-1023")
		tr.expect(r, http.StatusAccepted, "")
		loc = strings.TrimPrefix(r.header.Get("Location"), tr.srv.URL)
		r = tr.do("PATCH", loc, blob[1024:], "Content-Range", "1024-2047")
		tr.expect(r, http.StatusAccepted, "")
		loc = strings.TrimPrefix(r.header.Get("Location"), tr.srv.URL)
		tr.expect(tr.do("PUT", withQuery(loc, "digest="+d.String()), nil), http.StatusCreated, "")
		if got := tr.do("GET", "/v2/repo/blobs/"+d.String(), nil); !bytes.Equal(got.body, blob) {
			t.Fatalf("blob read back as %d bytes", len(got.body))
		}
	})
}

func withQuery(loc, q string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + q
	}
	return loc + "?" + q
}
