package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// newTestDriver opens a driver and closes it when the test ends.
func newTestDriver(t testing.TB, cfg s3.Config) *s3.Driver {
	t.Helper()
	d, err := s3.New(context.Background(), cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDriver(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("stratus-" + strings.ToLower(rand.Text()))
	drivertest.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) })
}

// TestDriverBucketRoot runs the suite again with keys at the bucket root,
// in a bucket of its own, so that no prefix mapping hides a bug.
func TestDriverBucketRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("the suite already ran under a root directory")
	}
	srv := s3test.Start(t)
	cfg := srv.Config("")
	cfg.Bucket = srv.NewBucket(t)
	drivertest.RunWith(t, func(t *testing.T) storage.Driver { return newTestDriver(t, cfg) },
		drivertest.Config{LargeSize: 32 << 20})
}

// TestUnreachable: a store that refuses connections or never answers gives
// a retryable error within the configured timeouts, not a hang.
func TestUnreachable(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()

	// Accepts connections and then says nothing.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	for _, tt := range []struct{ name, addr string }{
		{"connection refused", refusedAddr},
		{"no answer", silent.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDriver(t, s3.Config{
				Bucket: "b", Endpoint: "http://" + tt.addr, ForcePathStyle: true,
				AccessKey: "a", SecretKey: "b", RequestTimeout: 200 * time.Millisecond, MaxRetries: new(1),
			})
			start := time.Now()
			_, err := d.Stat(t.Context(), "some/key")
			if !storage.Retryable(err) {
				t.Errorf("Stat: %v; want a retryable error", err)
			}
			var op *storage.OpError
			if !errors.As(err, &op) || op.Driver != "s3" || op.Key != "some/key" {
				t.Errorf("Stat: %#v; want an *OpError for s3 and the key", err)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Stat took %s", elapsed)
			}
			_, err = d.Put(t.Context(), "k", strings.NewReader("x"), storage.PutOptions{Size: 1, CreateOnly: true})
			if !storage.Retryable(err) {
				t.Errorf("create-only Put: %v; want a retryable error", err)
			}
		})
	}
}

func TestSignedURL(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("signed-" + strings.ToLower(rand.Text()))
	cfg.Redirect = true
	d := newTestDriver(t, cfg)
	ctx := t.Context()
	body := []byte("pulled straight from the store")
	key := "blobs/sha256/ab/abcdef"
	if _, err := d.Put(ctx, key, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(context.Background(), key) })

	u, err := d.SignedURL(ctx, key, time.Minute)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET signed URL = %s %q; want 200 %q", resp.Status, got, body)
	}

	// The signature covers the key: another key is refused.
	resp, err = http.Get(strings.Replace(u, "abcdef", "abcdee", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET tampered URL = %s; want 403", resp.Status)
	}

	cfg.Redirect = false
	off := newTestDriver(t, cfg)
	if _, err := off.SignedURL(ctx, key, time.Minute); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("SignedURL with redirect off: %v; want ErrUnsupported", err)
	}
}

// TestInternalObjectsHidden: tails of unfinished writes live under the
// root but never show in a listing, and their keys are not writable.
func TestInternalObjectsHidden(t *testing.T) {
	srv := s3test.Start(t)
	d := newTestDriver(t, srv.Config("hidden-"+strings.ToLower(rand.Text())))
	ctx := t.Context()
	m, err := d.NewMultipart(ctx, "upload")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Abort(context.Background()) })
	if _, err := m.Append(ctx, strings.NewReader("tail bytes")); err != nil {
		t.Fatal(err)
	}
	page, err := d.List(ctx, "", "", 0)
	if err != nil || len(page.Objects) != 0 || page.More {
		t.Errorf("List(root) during an upload = %+v, %v; want empty", page, err)
	}
	_, err = d.Put(ctx, "_stratus/uploads/x", strings.NewReader("x"), storage.PutOptions{Size: 1})
	if !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Put under _stratus/: %v; want ErrInvalidKey", err)
	}
}

// TestCreateOnlyFallback: against a server that ignores If-None-Match,
// create-only still refuses an existing key (not atomically).
func TestCreateOnlyFallback(t *testing.T) {
	srv := s3test.Start(t)
	d := newTestDriver(t, srv.Config("fallback-"+strings.ToLower(rand.Text())))
	s3.IgnoreConditionalWrites(d)
	ctx := t.Context()
	put := func() error {
		_, err := d.Put(ctx, "k", strings.NewReader("v"), storage.PutOptions{Size: 1, CreateOnly: true})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("first create-only Put: %v", err)
	}
	t.Cleanup(func() { d.Delete(context.Background(), "k") })
	if err := put(); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create-only Put: %v; want ErrExists", err)
	}
}

// TestPartSizeChange: a handle written with a larger part size resumes in
// an instance with a smaller one, whose buffer the tail does not fit.
func TestPartSizeChange(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("partsize-" + strings.ToLower(rand.Text()))
	cfg.PartSize = 16 << 20
	big := newTestDriver(t, cfg)
	cfg.PartSize = 5 << 20
	small := newTestDriver(t, cfg)
	ctx := t.Context()

	data := make([]byte, 12<<20+5)
	rand.Read(data)
	m, err := big.NewMultipart(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, bytes.NewReader(data[:7<<20])); err != nil {
		t.Fatal(err)
	}
	h, _ := m.Handle()
	m, err = small.ResumeMultipart(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, bytes.NewReader(data[7<<20:])); err != nil {
		t.Fatalf("Append after part size change: %v", err)
	}
	if _, err := m.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { small.Delete(context.Background(), "obj") })
	got, err := storage.ReadAll(ctx, small, "obj", 1<<30)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v; want %d bytes", len(got), err, len(data))
	}
}

// TestThrottled: a store that keeps answering SlowDown is retried
// max_retries times and then reported as throttled.
func TestThrottled(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
	}))
	defer srv.Close()
	d := newTestDriver(t, s3.Config{
		Bucket: "b", Endpoint: srv.URL, ForcePathStyle: true,
		AccessKey: "a", SecretKey: "b", RequestTimeout: time.Second, MaxRetries: new(2),
	})
	_, err := d.Reader(t.Context(), "k", 0, -1)
	if !storage.Throttled(err) {
		t.Errorf("Reader: %v; want a throttled error", err)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts; want 3 (max_retries 2)", n)
	}
}

// TestCreateOnlyMultipart: a create-only Put too big for one request still
// refuses an existing key (If-None-Match on CompleteMultipartUpload) and
// leaves the old object alone.
func TestCreateOnlyMultipart(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("create-mp-" + strings.ToLower(rand.Text()))
	cfg.PartSize = 5 << 20
	d := newTestDriver(t, cfg)
	ctx := t.Context()
	big := make([]byte, 11<<20)
	rand.Read(big)
	if _, err := d.Put(ctx, "k", bytes.NewReader(big), storage.PutOptions{Size: -1, CreateOnly: true}); err != nil {
		t.Fatalf("first create-only Put: %v", err)
	}
	t.Cleanup(func() { d.Delete(context.Background(), "k") })
	other := bytes.Repeat([]byte("x"), 11<<20)
	if _, err := d.Put(ctx, "k", bytes.NewReader(other), storage.PutOptions{Size: -1, CreateOnly: true}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create-only Put: %v; want ErrExists", err)
	}
	got, err := storage.ReadAll(ctx, d, "k", 1<<30)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v; want the first object", len(got), err)
	}
}

// TestAppendWriteAmplification: 1 MiB appends, each through a fresh
// resume as the registry does per PATCH, send each byte to the store a
// bounded number of times (design §5), not a number growing with the
// object.
func TestAppendWriteAmplification(t *testing.T) {
	srv := s3test.Start(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			r.Body = &countingBody{ReadCloser: r.Body, n: &sent}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer counting.Close()

	cfg := srv.Config("amplification-" + strings.ToLower(rand.Text()))
	cfg.Endpoint = counting.URL // the Host header, which is signed, stays the proxy's
	d := newTestDriver(t, cfg)
	ctx := t.Context()

	const size, chunk = 32 << 20, 1 << 20
	data := make([]byte, size)
	rand.Read(data)
	m, err := d.NewMultipart(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < size; off += chunk {
		h, _ := m.Handle()
		if m, err = d.ResumeMultipart(ctx, h); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Append(ctx, bytes.NewReader(data[off:off+chunk])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(context.Background(), "obj") })
	// Per 8 MiB part: seven 1 MiB segments, then the part: 15 MiB for 8.
	ratio := float64(sent.Load()) / size
	t.Logf("sent %d MiB for a %d MiB object (%.2fx)", sent.Load()>>20, size>>20, ratio)
	if ratio > 2 {
		t.Errorf("sent %.2fx the object size; want at most 2x", ratio)
	}
	got, err := storage.ReadAll(ctx, d, "obj", size)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestAbortStale: an idle write (parts and tail) is aborted, an active one
// is left alone, and a dry run only counts.
func TestAbortStale(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("reaper")
	cfg.Bucket = srv.NewBucket(t)
	d := newTestDriver(t, cfg)
	ctx := context.Background()
	idle, err := d.NewMultipart(ctx, "data/idle")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Append(ctx, strings.NewReader("tail bytes")); err != nil {
		t.Fatal(err)
	}
	handle, _ := idle.Handle()
	cutoff := time.Now().Add(2 * time.Second)
	time.Sleep(2500 * time.Millisecond)
	active, err := d.NewMultipart(ctx, "data/active")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.AbortStale(ctx, cutoff, true); err != nil || n != 1 {
		t.Fatalf("dry run: %d, %v; want 1", n, err)
	}
	if _, err := d.ResumeMultipart(ctx, handle); err != nil {
		t.Fatalf("dry run aborted the upload: %v", err)
	}
	if n, err := d.AbortStale(ctx, cutoff, false); err != nil || n != 1 {
		t.Fatalf("abort: %d, %v; want 1", n, err)
	}
	if _, err := d.ResumeMultipart(ctx, handle); err == nil {
		t.Fatal("the idle upload can still be resumed")
	}
	if _, err := active.Append(ctx, strings.NewReader("x")); err != nil {
		t.Fatalf("the active upload was touched: %v", err)
	}
	if _, err := active.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
