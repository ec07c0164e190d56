package registry

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

// smallDisk mounts a tmpfs of size bytes for the test, so that the
// filesystem driver meets a real ENOSPC. Mounting needs root, which the
// test command runs as; elsewhere the test cannot run and says so.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mounting a %d-byte tmpfs for the full-disk test failed (needs root, as `bash integration/test.sh` runs): %v: %s", size, err, out)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestStorageFull: on a full filesystem a push answers 507 with a message
// saying so, leaves nothing partial behind (no data, record, link, temp or
// staged bytes), readiness reports it, and once space is freed the same
// push, sent again, works.
func TestStorageFull(t *testing.T) {
	root := smallDisk(t, 8<<20)
	store, err := filesystem.New(filesystem.Config{Root: filepath.Join(root, "registry")})
	if err != nil {
		t.Fatal(err)
	}
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	tr, reg := newTestRegistryOn(t, Config{LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second}, locks, store)

	// A filler file holds most of the disk; the blob is larger than what
	// is left.
	filler := filepath.Join(root, "filler")
	if err := os.WriteFile(filler, make([]byte, 7<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 2<<20)
	rand.Read(blob)
	d := sha(blob)
	before := tr.keys()

	full := tr.do("POST", "/v2/full/blobs/uploads/?digest="+d, blob)
	tr.expect(full, http.StatusInsufficientStorage, codeUnavailable)
	if !strings.Contains(string(full.body), "storage is full") {
		t.Errorf("507 body does not say the storage is full: %s", full.body)
	}
	if !reg.StorageFull() {
		t.Error("StorageFull() is false right after a write failed for lack of space")
	}

	// Chunked: the PATCH fails, the session stays where it was.
	r := tr.do("POST", "/v2/full/blobs/uploads/", nil)
	tr.expect(r, 202, "")
	loc := r.header.Get("Location")
	tr.expect(tr.do("PATCH", loc, blob, "Content-Range", fmt.Sprintf("0-%d", len(blob)-1)), http.StatusInsufficientStorage, codeUnavailable)
	st := tr.do("GET", loc, nil)
	if st.status != 204 || st.header.Get("Range") != "0-0" {
		t.Fatalf("upload status after a failed PATCH: %d Range %q; want 204 0-0", st.status, st.header.Get("Range"))
	}
	if after := tr.keys(); !slicesEqual(before, after) {
		t.Fatalf("a push that failed for lack of space left objects behind:\nbefore %v\nafter  %v", before, after)
	}
	for _, dir := range []string{"_tmp", "_uploads"} {
		assertNoBytes(t, filepath.Join(root, "registry", dir))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	tr.expect(tr.do("PATCH", loc, blob, "Content-Range", fmt.Sprintf("0-%d", len(blob)-1)), 202, "")
	tr.expect(tr.do("PUT", loc+"?digest="+d, nil), 201, "")
	got := tr.do("GET", "/v2/full/blobs/"+d, nil)
	if got.status != 200 || !bytes.Equal(got.body, blob) {
		t.Fatalf("GET after freeing space: %d, %d bytes", got.status, len(got.body))
	}
	tr.expect(tr.do("POST", "/v2/full2/blobs/uploads/?digest="+d, blob), 201, "")
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// assertNoBytes fails if any file under dir holds data.
func assertNoBytes(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > 0 {
			t.Errorf("%s holds %d bytes after a failed write", path, fi.Size())
		}
		return nil
	})
}

// slowBody yields n bytes in small steps over about d.
type slowBody struct {
	left, step int
	pause      time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	n := min(len(p), b.step, b.left)
	clear(p[:n])
	b.left -= n
	return n, nil
}

// TestSlowChunkRenewsLease streams one PATCH for several lease renewals
// (lease_ttl/3 each), so that under -race the renewal goroutine and the
// request's session save both touch the lease; the chunk must be accepted
// and the session advanced.
func TestSlowChunkRenewsLease(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	tr, _ := newTestRegistryWith(t, Config{LeaseTTL: time.Second, LeaseWait: 2 * time.Second}, locks)
	r := tr.do("POST", "/v2/slow/blobs/uploads/", nil)
	tr.expect(r, 202, "")
	const size = 64 << 10
	req, err := http.NewRequest("PATCH", tr.srv.URL+r.header.Get("Location"), &slowBody{left: size, step: 4 << 10, pause: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("Range") != fmt.Sprintf("0-%d", size-1) {
		t.Fatalf("slow PATCH: %s, Range %q", resp.Status, resp.Header.Get("Range"))
	}
	tr.expect(tr.do("PUT", r.header.Get("Location")+"?digest="+sha(make([]byte, size)), nil), 201, "")
}
