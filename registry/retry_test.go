package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// TestRetriedWritesAreIdempotent injects one failure into each write of a
// blob push, before the store applies it or after (the answer lost), and
// checks the registry's promise: every answer is a success or a 503 with
// Retry-After, sending the same request again after a 503 succeeds, the
// acknowledged blob reads back byte for byte, and exactly one data object
// holds it.
func TestRetriedWritesAreIdempotent(t *testing.T) {
	faults := []struct {
		op, key string
		when    drivertest.Fault
	}{
		{"put", "blobs/", drivertest.After},
		{"put", "blobs/", drivertest.Before},
		{"put", "/_links/", drivertest.After},
		{"put", "/_links/", drivertest.Before},
		{"put", "catalog/", drivertest.After},
		{"put", "data/", drivertest.After},
		{"commit", "data/", drivertest.After},
		{"commit", "data/", drivertest.Before},
		{"append", "data/", drivertest.After},
		{"append", "data/", drivertest.Before},
	}
	for _, mode := range []string{"monolithic", "chunked", "final chunk in PUT"} {
		chunked := mode != "monolithic"
		for _, f := range faults {
			if !chunked && (f.op == "commit" || f.op == "append") || chunked && f.op == "put" && f.key == "data/" {
				continue // the other upload path has no such write
			}
			name := fmt.Sprintf("%s/%s %s %s", mode, f.op, f.key, map[drivertest.Fault]string{drivertest.Before: "before", drivertest.After: "after"}[f.when])
			t.Run(name, func(t *testing.T) {
				store := drivertest.NewFaulty(inmemory.New())
				locks := memory.New()
				t.Cleanup(func() { locks.Close() })
				tr, _ := newTestRegistryOn(t, Config{LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second}, locks, store)
				blob := bytes.Repeat([]byte(name), 1000)
				d := sha(blob)
				store.Fail(f.op, f.key, f.when, 1)
				if chunked {
					pushChunkedWithRetries(t, tr, "retry/app", blob, mode == "final chunk in PUT")
				} else {
					sendUntilDone(t, tr, "POST", "/v2/retry/app/blobs/uploads/?digest="+d, blob, 201)
				}
				got := tr.do("GET", "/v2/retry/app/blobs/"+d, nil)
				if got.status != 200 || !bytes.Equal(got.body, blob) {
					t.Fatalf("acknowledged blob reads back as %d, %d bytes", got.status, len(got.body))
				}
				if n := countKeys(t, store, dataPrefix); n != 1 {
					t.Errorf("%d data objects after the push; want exactly 1", n)
				}
			})
		}
	}
}

// pushChunkedWithRetries sends blob in two PATCHes and a PUT, or with
// lastInPUT one PATCH and a PUT carrying the second half, which a retried
// PUT then sends again.
func pushChunkedWithRetries(t *testing.T, tr *testRegistry, repo string, blob []byte, lastInPUT bool) {
	t.Helper()
	r := sendUntilDone(t, tr, "POST", "/v2/"+repo+"/blobs/uploads/", nil, 202)
	loc := r.header.Get("Location")
	half := len(blob) / 2
	sendUntilDone(t, tr, "PATCH", loc, blob[:half], 202, "Content-Range", fmt.Sprintf("0-%d", half-1))
	var final []byte
	if lastInPUT {
		final = blob[half:]
	} else {
		sendUntilDone(t, tr, "PATCH", loc, blob[half:], 202, "Content-Range", fmt.Sprintf("%d-%d", half, len(blob)-1))
	}
	sendUntilDone(t, tr, "PUT", loc+"?digest="+sha(blob), final, 201)
}

// sendUntilDone sends the same request until it gets want, accepting only
// 503 with Retry-After in between, at most three times.
func sendUntilDone(t *testing.T, tr *testRegistry, method, path string, body []byte, want int, headers ...string) resp {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r := tr.do(method, path, body, headers...)
		switch {
		case r.status == want:
			return r
		case r.status == 503 && r.header.Get("Retry-After") != "" && attempt < 3:
			continue
		}
		t.Fatalf("%s %s attempt %d: %d %s; want %d (or 503 with Retry-After, then %d)", method, path, attempt, r.status, r.body, want, want)
	}
}

func countKeys(t *testing.T, d storage.Driver, prefix string) int {
	t.Helper()
	n := 0
	after := ""
	for {
		page, err := d.List(context.Background(), prefix, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			if strings.HasPrefix(o.Key, prefix) {
				n++
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return n
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

// refusingDriver fails every write the way a driver reports a store that
// refuses the registry's credentials.
type refusingDriver struct{ storage.Driver }

func (refusingDriver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	return storage.Info{}, &storage.OpError{Op: "put", Driver: "s3", Key: key, Err: fmt.Errorf("%w: access denied; check the credentials and the IAM policy: operation error S3: PutObject, https://bucket.internal.example/%s: StatusCode: 403", storage.ErrMisconfigured, key)}
}

// TestMisconfiguredStore: a store that refuses the registry answers a clear
// 503 naming the cause (no Retry-After: retrying does not help, and no
// endpoint or key in the message), logged at error level once, not per
// request.
func TestMisconfiguredStore(t *testing.T) {
	var logs bytes.Buffer
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	reg, err := New(context.Background(), Config{}, Deps{Storage: refusingDriver{inmemory.New()}, Locking: locks,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	tr := &testRegistry{t: t, srv: srv}
	blob := []byte("refused")
	for range 3 {
		r := tr.do("POST", "/v2/app/blobs/uploads/?digest="+sha(blob), blob)
		tr.expect(r, 503, codeUnavailable)
		if r.header.Get("Retry-After") != "" {
			t.Errorf("misconfiguration answered with Retry-After %q", r.header.Get("Retry-After"))
		}
		msg := string(r.body)
		if !strings.Contains(msg, "s3: access denied; check the credentials and the IAM policy") || strings.Contains(msg, "example") || strings.Contains(msg, "blobs/") {
			t.Errorf("message does not name the cause, or leaks details: %s", msg)
		}
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d error-level log lines for 3 refused requests; want 1:\n%s", n, logs.String())
	}
}
