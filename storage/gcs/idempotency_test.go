package gcs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/gcs"
	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
)

// faultEnv is a driver that talks to the emulator through a fault proxy,
// plus a second driver on the same root that never retries, for the
// cases where the caller (not the client) retries.
type faultEnv struct {
	t       *testing.T
	proxy   *faultProxy
	root    string
	retry   *gcs.Driver // max_retries 2
	noRetry *gcs.Driver // max_retries -1
	direct  *gcs.Driver // no proxy, to inspect the truth
}

func newFaultEnv(t *testing.T) *faultEnv {
	srv := gcstest.Start(t)
	f := newFaultProxy(t, srv.Endpoint)
	root := uniqueRoot("faults")
	cfg := srv.Config(root)
	direct := newTestDriver(t, cfg)
	cfg.Endpoint = f.URL
	cfg.ChunkSize = 256 << 10 // several parts per MiB
	retry := newTestDriver(t, cfg)
	cfg.MaxRetries = new(0)
	noRetry := newTestDriver(t, cfg)
	return &faultEnv{t: t, proxy: f, root: root, retry: retry, noRetry: noRetry, direct: direct}
}

// name is the bucket object name of a storage key.
func (e *faultEnv) name(key string) string { return e.root + "/" + key }

func (e *faultEnv) wantContent(key string, want []byte) {
	e.t.Helper()
	got, err := storage.ReadAll(context.Background(), e.direct, key, 1<<30)
	if err != nil || !bytes.Equal(got, want) {
		e.t.Fatalf("read back %q: %d bytes, %v; want %d bytes exactly as written", key, len(got), err, len(want))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestLostAnswers: whole-object writes and deletes applied by GCS but
// whose answers were lost, retried by the client or by the caller.
func TestLostAnswers(t *testing.T) {
	e := newFaultEnv(t)
	ctx := t.Context()

	t.Run("create-only Put, client retry", func(t *testing.T) {
		body := []byte("manifest bytes")
		r := e.proxy.add(&rule{match: isUpload(e.name("put/retry")), kind: dropAnswer, left: 1})
		_, err := e.retry.Put(ctx, "put/retry", bytes.NewReader(body), storage.PutOptions{Size: int64(len(body)), CreateOnly: true})
		if r.hits.Load() != 1 {
			t.Fatalf("fault injected %d times; want 1", r.hits.Load())
		}
		// The retry met our own object: ErrExists, which the registry
		// resolves by reading it back. Never a 5xx or a generic failure.
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("create-only Put whose answer was lost: %v; want ErrExists from the client's retry", err)
		}
		e.wantContent("put/retry", body)
	})

	t.Run("create-only Put, caller retry", func(t *testing.T) {
		body := []byte("blob record")
		r := e.proxy.add(&rule{match: isUpload(e.name("put/caller")), kind: dropAnswer, left: 1})
		_, err := e.noRetry.Put(ctx, "put/caller", bytes.NewReader(body), storage.PutOptions{Size: int64(len(body)), CreateOnly: true})
		if r.hits.Load() != 1 || !storage.Retryable(err) {
			t.Fatalf("Put with the answer lost and no retries: %v (faults %d); want a retryable error", err, r.hits.Load())
		}
		_, err = e.noRetry.Put(ctx, "put/caller", bytes.NewReader(body), storage.PutOptions{Size: int64(len(body)), CreateOnly: true})
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("caller's retry: %v; want ErrExists", err)
		}
		e.wantContent("put/caller", body)
	})

	t.Run("Delete, client retry", func(t *testing.T) {
		e.put(t, "del/one", []byte("x"))
		r := e.proxy.add(&rule{match: isDelete(e.name("del/one")), kind: dropAnswer, left: 1})
		if err := e.retry.Delete(ctx, "del/one"); err != nil || r.hits.Load() != 1 {
			t.Fatalf("Delete whose answer was lost: %v (faults %d); want nil", err, r.hits.Load())
		}
		if _, err := e.direct.Stat(ctx, "del/one"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat after Delete: %v; want ErrNotFound", err)
		}
	})

	t.Run("DeleteBatch, caller retry", func(t *testing.T) {
		keys := []string{"del/a", "del/b", "del/c"}
		for _, k := range keys {
			e.put(t, k, []byte(k))
		}
		r := e.proxy.add(&rule{match: isDelete(e.name("del/b")), kind: dropAnswer, left: 1})
		err := e.noRetry.DeleteBatch(ctx, keys)
		if r.hits.Load() != 1 || !storage.Retryable(err) {
			t.Fatalf("DeleteBatch with one answer lost and no retries: %v (faults %d); want a retryable error", err, r.hits.Load())
		}
		if err := e.noRetry.DeleteBatch(ctx, keys); err != nil {
			t.Fatalf("retried DeleteBatch: %v; want nil", err)
		}
		for _, k := range keys {
			if _, err := e.direct.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Stat(%s) after DeleteBatch: %v; want ErrNotFound", k, err)
			}
		}
	})

	e.proxy.clear()
	cleanRoot(t, e.direct)
}

// TestLostAnswersMultipart: part uploads and composes applied by GCS but
// whose answers were lost.
func TestLostAnswersMultipart(t *testing.T) {
	e := newFaultEnv(t)
	ctx := t.Context()

	t.Run("Commit, client retry of the compose", func(t *testing.T) {
		data := randomBytes(3<<20 + 17)
		m := appendAll(t, e.retry, "commit/retry", data, 1<<20)
		r := e.proxy.add(&rule{match: isCompose(e.name("commit/retry")), kind: dropAnswer, left: 1})
		info, err := m.Commit(ctx)
		if err != nil || info.Size != int64(len(data)) || r.hits.Load() != 1 {
			t.Fatalf("Commit whose compose answer was lost = %+v, %v (faults %d); want success with size %d", info, err, r.hits.Load(), len(data))
		}
		e.wantContent("commit/retry", data)
		wantNoTemporaries(t, e.direct)
	})

	t.Run("Commit, caller retry", func(t *testing.T) {
		data := randomBytes(2<<20 + 5)
		m := appendAll(t, e.noRetry, "commit/caller", data, 700<<10)
		h, _ := m.Handle()
		r := e.proxy.add(&rule{match: isCompose(e.name("commit/caller")), kind: dropAnswer, left: 1})
		if _, err := m.Commit(ctx); r.hits.Load() != 1 || !storage.Retryable(err) {
			t.Fatalf("Commit with the answer lost and no retries: %v (faults %d); want a retryable error", err, r.hits.Load())
		}
		// The registry retries from the saved handle, in another process.
		again, err := e.retry.ResumeMultipart(ctx, h)
		if err != nil {
			t.Fatalf("resume after a lost Commit answer: %v", err)
		}
		info, err := again.Commit(ctx)
		if err != nil || info.Size != int64(len(data)) {
			t.Fatalf("retried Commit = %+v, %v; want size %d", info, err, len(data))
		}
		e.wantContent("commit/caller", data)
		wantNoTemporaries(t, e.direct)
	})

	t.Run("Append, client retry of a part", func(t *testing.T) {
		data := randomBytes(1<<20 + 3)
		r := e.proxy.add(&rule{match: isUploadUnder(e.root + "/_stratus/uploads/"), kind: dropAnswer, left: 2})
		m := appendAll(t, e.retry, "append/retry", data, len(data))
		if r.hits.Load() != 2 {
			t.Fatalf("faults injected %d; want 2", r.hits.Load())
		}
		if _, err := m.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		e.wantContent("append/retry", data)
	})

	t.Run("Append, caller resumes from the saved handle", func(t *testing.T) {
		first, second := randomBytes(300<<10), randomBytes(900<<10)
		m := appendAll(t, e.noRetry, "append/caller", first, len(first))
		h, _ := m.Handle()
		// The second part upload of the next Append is applied, its
		// answer lost: the Append fails.
		r := e.proxy.add(&rule{match: isUploadUnder(e.root + "/_stratus/uploads/"), kind: dropAnswer, left: 1})
		if _, err := m.Append(ctx, bytes.NewReader(second)); err == nil || !storage.Retryable(err) || r.hits.Load() != 1 {
			t.Fatalf("Append with a lost answer: %v (faults %d); want a retryable error", err, r.hits.Load())
		}
		m, err := e.noRetry.ResumeMultipart(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Append(ctx, bytes.NewReader(second)); err != nil {
			t.Fatalf("Append resumed from the saved handle: %v", err)
		}
		if info, err := m.Commit(ctx); err != nil || info.Size != int64(len(first)+len(second)) {
			t.Fatalf("Commit = %+v, %v", info, err)
		}
		e.wantContent("append/caller", append(first, second...))
		wantNoTemporaries(t, e.direct)
	})
	e.proxy.clear()
	cleanRoot(t, e.direct)
}

func (e *faultEnv) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := e.direct.Put(t.Context(), key, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
}

// appendAll starts a write of data in appends of step bytes, each through
// a fresh resume as the registry does per PATCH, and returns the writer.
func appendAll(t *testing.T, d *gcs.Driver, key string, data []byte, step int) storage.Multipart {
	t.Helper()
	ctx := t.Context()
	m, err := d.NewMultipart(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += step {
		h, _ := m.Handle()
		if m, err = d.ResumeMultipart(ctx, h); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Append(ctx, bytes.NewReader(data[off:min(off+step, len(data))])); err != nil {
			t.Fatalf("Append at %d: %v", off, err)
		}
	}
	return m
}

// wantNoTemporaries fails if a finished write left objects behind.
func wantNoTemporaries(t *testing.T, d *gcs.Driver) {
	t.Helper()
	if n, err := d.AbortStale(t.Context(), time.Now().Add(time.Hour), true); err != nil || n != 0 {
		t.Fatalf("temporary objects left behind: %d writes, %v", n, err)
	}
}

// cleanRoot deletes every object under the driver's root.
func cleanRoot(t *testing.T, d *gcs.Driver) {
	t.Helper()
	ctx := context.Background()
	for {
		page, err := d.List(ctx, "", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Objects) == 0 {
			return
		}
		keys := make([]string, len(page.Objects))
		for i, o := range page.Objects {
			keys[i] = o.Key
		}
		if err := d.DeleteBatch(ctx, keys); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCommitFindsWriteGone: a Commit that finds the write finished by
// someone else succeeds only if the key holds exactly its bytes.
func TestCommitFindsWriteGone(t *testing.T) {
	srv := gcstest.Start(t)
	d := newTestDriver(t, srv.Config(uniqueRoot("gone")))
	ctx := t.Context()
	data := randomBytes(600 << 10)
	resumeTwice := func(key string) (a, b storage.Multipart) {
		m := appendAll(t, d, key, data, 200<<10)
		h, _ := m.Handle()
		other, err := d.ResumeMultipart(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return m, other
	}

	a, b := resumeTwice("same")
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Commit(ctx); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("second Commit of one write = %+v, %v; want success with size %d", info, err, len(data))
	}

	a, b = resumeTwice("overwritten")
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte("x"), len(data)) // same size, other bytes
	if _, err := d.Put(ctx, "overwritten", bytes.NewReader(other), storage.PutOptions{Size: int64(len(other))}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); !errors.Is(err, storage.ErrHandleExpired) {
		t.Fatalf("Commit of a finished write whose key now holds other bytes: %v; want ErrHandleExpired", err)
	}

	a, b = resumeTwice("aborted")
	if err := a.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); !errors.Is(err, storage.ErrHandleExpired) {
		t.Fatalf("Commit of an aborted write: %v; want ErrHandleExpired", err)
	}
	if _, err := d.Stat(ctx, "aborted"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat after a refused Commit: %v; want ErrNotFound", err)
	}
	cleanRoot(t, d)
	wantNoTemporaries(t, d)
}

// TestCommitChecksComposedObject: a compose whose result is not the
// write's bytes (reported with another CRC32C, as GCS would make if a
// pinned source generation were ignored, which fake-gcs-server does:
// gcstest.LimitComposePreconditions) is refused, never reported as
// success.
func TestCommitChecksComposedObject(t *testing.T) {
	e := newFaultEnv(t)
	ctx := t.Context()
	data := randomBytes(700 << 10)
	m := appendAll(t, e.retry, "checked", data, 300<<10)
	r := e.proxy.add(&rule{match: isCompose(e.name("checked")), kind: editAnswer, left: 1, edit: func(b []byte) []byte {
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Errorf("compose answer is not JSON: %v", err)
			return b
		}
		obj["crc32c"] = "AAAAAA==" // CRC32C 0
		out, _ := json.Marshal(obj)
		return out
	}})
	_, err := m.Commit(ctx)
	if r.hits.Load() != 1 || err == nil || !strings.Contains(err.Error(), "CRC32C") {
		t.Fatalf("Commit whose composed object has another CRC32C: %v (edits %d); want a CRC32C error", err, r.hits.Load())
	}
	e.proxy.clear()
	cleanRoot(t, e.direct)
	if err := m.Abort(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestInjectedStatuses: 503 and 429 before the backend are retried
// max_retries times and reported as transient (429 as throttled); 403 is
// final and says what is wrong.
func TestInjectedStatuses(t *testing.T) {
	e := newFaultEnv(t)
	ctx := t.Context()
	body := []byte("x")
	ops := []struct {
		name string
		call func() error
	}{
		{"Stat", func() error { _, err := e.retry.Stat(ctx, "k"); return err }},
		{"Reader", func() error { _, err := e.retry.Reader(ctx, "k", 0, -1); return err }},
		{"List", func() error { _, err := e.retry.List(ctx, "", "", 0); return err }},
		{"create-only Put", func() error {
			_, err := e.retry.Put(ctx, "k", bytes.NewReader(body), storage.PutOptions{Size: 1, CreateOnly: true})
			return err
		}},
		{"Put", func() error {
			_, err := e.retry.Put(ctx, "k", bytes.NewReader(body), storage.PutOptions{Size: 1})
			return err
		}},
		{"Delete", func() error { return e.retry.Delete(ctx, "k") }},
		{"NewMultipart", func() error { _, err := e.retry.NewMultipart(ctx, "k"); return err }},
	}
	for _, st := range []struct {
		status    int
		retryable bool
		throttled bool
		attempts  int64
		mention   string
	}{
		{503, true, false, 3, ""},
		{429, true, true, 3, ""},
		{500, true, false, 3, ""},
		{403, false, false, 1, "roles/storage.objectUser"},
	} {
		for _, op := range ops {
			r := e.proxy.add(&rule{match: everything, kind: statusBefore, status: st.status, left: -1})
			err := op.call()
			e.proxy.clear()
			if storage.Retryable(err) != st.retryable || storage.Throttled(err) != st.throttled {
				t.Errorf("%s under %d: %v; want retryable %v, throttled %v", op.name, st.status, err, st.retryable, st.throttled)
			}
			if r.hits.Load() != st.attempts {
				t.Errorf("%s under %d: %d attempts; want %d (max_retries 2)", op.name, st.status, r.hits.Load(), st.attempts)
			}
			if st.mention != "" && (err == nil || !strings.Contains(err.Error(), st.mention)) {
				t.Errorf("%s under %d: %v; want it to mention %q", op.name, st.status, err, st.mention)
			}
		}
	}
}

// TestMissingBucket: a bucket that does not exist is a configuration
// error that says so, not a missing object and not transient.
func TestMissingBucket(t *testing.T) {
	srv := gcstest.Start(t)
	cfg := srv.Config("")
	cfg.Bucket = "no-such-bucket-" + strings.ToLower(rand.Text())
	d := newTestDriver(t, cfg)
	_, err := d.List(t.Context(), "", "", 0)
	if err == nil || storage.Retryable(err) || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "bucket does not exist") {
		t.Fatalf("List in a missing bucket: %v; want a permanent error naming the bucket", err)
	}
}
