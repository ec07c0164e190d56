package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// dropCompletions proxies to target and, for the first CompleteMultipartUpload
// it sees, lets the store apply it, then resets the connection instead of
// answering: the SDK's retry then finds the upload gone.
func dropCompletions(t *testing.T, target string) (string, *atomic.Int32) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int32 // completions seen
	tr := &http.Transport{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		out.Host = r.Host // SigV4 signs it
		if r.ContentLength == 0 {
			out.Body = nil
		}
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		complete := r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
		if complete && dropped.Add(1) == 1 {
			io.Copy(io.Discard, resp.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return srv.URL, &dropped
}

// TestCompletionAnswerLost: a CompleteMultipartUpload that the store
// applied but whose answer was lost is retried by the SDK, which gets
// NoSuchUpload; the driver recognises its own completed object and
// succeeds (design §7), for a multipart Put and for a resumable write's
// Commit. An upload that is really gone still fails.
func TestCompletionAnswerLost(t *testing.T) {
	srv := s3test.Start(t)
	part := int64(5 << 20)
	data := make([]byte, 2*part+123)
	rand.Read(data)
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, d *s3.Driver, key string) error
	}{
		{"multipart Put", func(ctx context.Context, d *s3.Driver, key string) error {
			_, err := d.Put(ctx, key, bytes.NewReader(data), storage.PutOptions{Size: -1})
			return err
		}},
		{"create-only multipart Put", func(ctx context.Context, d *s3.Driver, key string) error {
			_, err := d.Put(ctx, key, bytes.NewReader(data), storage.PutOptions{Size: -1, CreateOnly: true})
			return err
		}},
		{"Commit with a tail", func(ctx context.Context, d *s3.Driver, key string) error {
			mp, err := d.NewMultipart(ctx, key)
			if err != nil {
				return err
			}
			if _, err := mp.Append(ctx, bytes.NewReader(data)); err != nil {
				return err
			}
			_, err = mp.Commit(ctx)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, dropped := dropCompletions(t, srv.Endpoint)
			cfg := srv.Config("lost-complete-" + strings.ToLower(rand.Text()))
			cfg.Endpoint, cfg.PartSize = endpoint, storage.Size(part)
			d := newTestDriver(t, cfg)
			ctx := t.Context()
			if err := tc.write(ctx, d, "k"); err != nil {
				t.Fatalf("write whose completion answer was lost: %v", err)
			}
			t.Cleanup(func() { d.Delete(context.Background(), "k") })
			if n := dropped.Load(); n < 2 {
				t.Fatalf("%d completions seen; want the dropped one and the SDK's retry", n)
			}
			got, err := storage.ReadAll(ctx, d, "k", 1<<30)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, %v; want the %d bytes written", len(got), err, len(data))
			}
		})
	}

	t.Run("upload really gone", func(t *testing.T) {
		cfg := srv.Config("gone-complete-" + strings.ToLower(rand.Text()))
		cfg.PartSize = storage.Size(part)
		d := newTestDriver(t, cfg)
		ctx := t.Context()
		mp, err := d.NewMultipart(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mp.Append(ctx, bytes.NewReader(data[:part])); err != nil { // one part, no tail
			t.Fatal(err)
		}
		h, _ := mp.Handle()
		other, err := d.ResumeMultipart(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := mp.Commit(ctx); !errors.Is(err, storage.ErrHandleExpired) {
			t.Fatalf("Commit of an aborted upload: %v; want ErrHandleExpired", err)
		}
		if _, err := d.Stat(ctx, "k"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat after a failed Commit: %v; want ErrNotFound", err)
		}
	})
}
