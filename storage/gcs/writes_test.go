package gcs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/gcs"
	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
)

// TestInternalObjectsHidden: part objects of unfinished writes live under
// the root but never show in a listing, and their keys are not writable.
func TestInternalObjectsHidden(t *testing.T) {
	srv := gcstest.Start(t)
	d := newTestDriver(t, srv.Config(uniqueRoot("hidden")))
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

// TestAppendWriteAmplification: 1 MiB appends, each through a fresh
// resume as the registry does per PATCH, send each byte to the store a
// bounded number of times (design §5), not a number growing with the
// object, and Commit moves no data.
func TestAppendWriteAmplification(t *testing.T) {
	srv := gcstest.Start(t)
	var sent, commitSent atomic.Int64
	var committing atomic.Bool
	f := newFaultProxy(t, srv.Endpoint)
	counting := &rule{match: func(r *http.Request) bool {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			r.Body = &countingBody{ReadCloser: r.Body, n: &sent}
			if committing.Load() {
				r.Body = &countingBody{ReadCloser: r.Body, n: &commitSent}
			}
		}
		return false // never a fault: only counts
	}, left: -1}
	f.add(counting)
	cfg := srv.Config(uniqueRoot("amplification"))
	cfg.Endpoint = f.URL
	cfg.ChunkSize = 8 << 20
	d := newTestDriver(t, cfg)
	const size, chunk = 32 << 20, 1 << 20
	data := randomBytes(size)
	m := appendAll(t, d, "obj", data, chunk)
	committing.Store(true)
	if _, err := m.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Delete(context.Background(), "obj") })
	// Per 8 MiB part: tails of 1..7 MiB, then the part: 36 MiB for 8.
	ratio := float64(sent.Load()) / size
	t.Logf("sent %d MiB for a %d MiB object (%.2fx); Commit sent %d bytes", sent.Load()>>20, size>>20, ratio, commitSent.Load())
	if ratio > 4.6 {
		t.Errorf("sent %.2fx the object size; want at most 4.5x", ratio)
	}
	if commitSent.Load() > 64<<10 {
		t.Errorf("Commit sent %d bytes; want only compose requests", commitSent.Load())
	}
	got, err := storage.ReadAll(t.Context(), d, "obj", size)
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

// TestAbortStale: an idle write (marker, parts and tail) is aborted, an
// active one is left alone, and a dry run only counts.
func TestAbortStale(t *testing.T) {
	srv := gcstest.Start(t)
	cfg := srv.Config("reaper")
	cfg.Bucket = srv.NewBucket(t)
	cfg.ChunkSize = 256 << 10
	d := newTestDriver(t, cfg)
	ctx := context.Background()
	idle := appendAll(t, d, "data/idle", randomBytes(600<<10), 600<<10)
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
		t.Fatalf("dry run aborted the write: %v", err)
	}
	if n, err := d.AbortStale(ctx, cutoff, false); err != nil || n != 1 {
		t.Fatalf("abort: %d, %v; want 1", n, err)
	}
	if _, err := d.ResumeMultipart(ctx, handle); !errors.Is(err, storage.ErrHandleExpired) {
		t.Fatalf("resuming the reaped write: %v; want ErrHandleExpired", err)
	}
	if _, err := active.Append(ctx, strings.NewReader("x")); err != nil {
		t.Fatalf("the active write was touched: %v", err)
	}
	if _, err := active.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing of the reaped write is left, and the active one cleaned up
	// after itself.
	if n, err := d.AbortStale(ctx, time.Now().Add(time.Hour), true); err != nil || n != 0 {
		t.Fatalf("writes left after the reap and a commit: %d, %v; want 0", n, err)
	}
}

// TestEmulatorHostVariable: STORAGE_EMULATOR_HOST takes precedence over
// endpoint and needs no credentials, as in every Google client library.
func TestEmulatorHostVariable(t *testing.T) {
	srv := gcstest.Start(t)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.Endpoint, "http://"))
	cfg := gcs.Config{Bucket: srv.Bucket, RootDirectory: uniqueRoot("envhost"), Endpoint: "http://127.0.0.1:1"}
	d := newTestDriver(t, cfg)
	ctx := t.Context()
	if _, err := d.Put(ctx, "k", strings.NewReader("v"), storage.PutOptions{Size: 1}); err != nil {
		t.Fatalf("Put through STORAGE_EMULATOR_HOST: %v", err)
	}
	if got, err := storage.ReadAll(ctx, d, "k", 10); err != nil || string(got) != "v" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if err := d.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}
