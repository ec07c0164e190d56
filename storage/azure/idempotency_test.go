package azure_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/azure"
	"github.com/stratus-registry/stratus/storage/azure/azuretest"
)

// proxied is a driver whose every request goes through a fault proxy.
type proxied struct {
	t     *testing.T
	d     *azure.Driver
	p     *faultProxy
	plain *azure.Driver // the same container, not through the proxy
	root  string
}

// newProxied builds one with SDK retries (retries > 0) or without (0),
// and small blocks so that a few MiB make several.
func newProxied(t *testing.T, retries int) *proxied {
	t.Helper()
	srv := azuretest.Start(t)
	p := newFaultProxy(t, srv.ServiceURL)
	root := "idem-" + strings.ToLower(rand.Text())
	cfg := srv.Config(root)
	cfg.MaxRetries = &retries
	cfg.ServiceURL = p.URL()
	d, err := azure.NewWithLimits(context.Background(), cfg, testLogger(t), 256<<10, azure.MaxCommittedBlocks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &proxied{t: t, d: d, p: p, plain: newTestDriver(t, srv.Config(root)), root: root}
}

func (x *proxied) content(key string) []byte {
	x.t.Helper()
	b, err := storage.ReadAll(context.Background(), x.plain, key, 1<<30)
	if err != nil {
		x.t.Fatalf("reading %q back: %v", key, err)
	}
	return b
}

func randData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestLostAnswers: each write is applied by Azurite but its answer is
// lost on the way back. With the SDK's retries the retry must give the
// right answer; without them, the caller's retry must.
func TestLostAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retries int
	}{{"sdk retries", 2}, {"no sdk retries", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			x := newProxied(t, tc.retries)
			t.Run("create-only Put small", func(t *testing.T) { x.createOnly(t, "small", 1000) })
			t.Run("create-only Put staged", func(t *testing.T) { x.createOnly(t, "staged", 1<<20+17) })
			t.Run("multipart", func(t *testing.T) { x.multipart(t) })
			t.Run("Delete", func(t *testing.T) { x.delete(t) })
			t.Run("DeleteBatch", func(t *testing.T) { x.deleteBatch(t) })
		})
	}
}

// retryCaller retries op as the registry does: only transient errors, a
// few times.
func retryCaller(t *testing.T, what string, op func() error) error {
	var err error
	for range 4 {
		if err = op(); err == nil || !storage.Retryable(err) {
			return err
		}
		t.Logf("%s: transient error, retrying: %v", what, err)
	}
	return err
}

func (x *proxied) createOnly(t *testing.T, name string, size int) {
	ctx := t.Context()
	key := "blobs/" + name
	data := randData(size)
	// A staged Put ends with Put Block List; a small one is one Put Blob.
	match := op("PUT blob "+x.root+"/"+key, "")
	if size > 256<<10 {
		match = op("PUT blocklist "+x.root+"/"+key, "")
	}
	before := x.p.faultCount()
	x.p.setRule(once(match, fault{dropAnswer: true}))
	defer x.p.setRule(nil)
	err := retryCaller(t, "put", func() error {
		_, err := x.d.Put(ctx, key, bytes.NewReader(data), storage.PutOptions{CreateOnly: true, Size: int64(len(data))})
		return err
	})
	if x.p.faultCount() != before+1 {
		t.Fatalf("the proxy dropped %d answers; want 1", x.p.faultCount()-before)
	}
	// The first attempt was applied, so the retry finds the blob. It is
	// this write's own (same MD5, or the same block ids), so the answer is
	// success: never another error, and not ErrExists either, which a
	// caller would take for a lost race.
	if err != nil {
		t.Fatalf("create-only Put after a lost answer: %v; want success", err)
	}
	if got := x.content(key); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, not the %d written", len(got), len(data))
	}
	// Identical bytes from another writer are indistinguishable from a
	// retry, and also success: the key holds exactly what it wrote.
	if size <= 256<<10 {
		if _, err := x.d.Put(ctx, key, bytes.NewReader(data), storage.PutOptions{CreateOnly: true, Size: int64(len(data))}); err != nil {
			t.Fatalf("create-only Put of identical bytes: %v; want success", err)
		}
	} else if _, err := x.d.Put(ctx, key, bytes.NewReader(data), storage.PutOptions{CreateOnly: true, Size: int64(len(data))}); !errors.Is(err, storage.ErrExists) {
		// A staged Put has a fresh write id: not its blocks, so ErrExists.
		t.Fatalf("create-only staged Put of identical bytes by another writer: %v; want ErrExists", err)
	}
	// And a genuinely lost race is still ErrExists with the bytes kept.
	_, err = x.d.Put(ctx, key, bytes.NewReader([]byte("other")), storage.PutOptions{CreateOnly: true, Size: 5})
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create-only Put: %v; want ErrExists", err)
	}
	if got := x.content(key); !bytes.Equal(got, data) {
		t.Fatalf("a lost create-only race changed the blob")
	}
}

// multipart loses the answers of a segment write, a block stage and the
// Put Block List; Commit must succeed with the right size and bytes.
func (x *proxied) multipart(t *testing.T) {
	ctx := t.Context()
	key := "data/upload"
	m, err := x.d.NewMultipart(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	appendChunk := func(n int) {
		t.Helper()
		b := randData(n)
		h, err := m.Handle()
		if err != nil {
			t.Fatal(err)
		}
		err = retryCaller(t, "append", func() error {
			_, err := m.Append(ctx, bytes.NewReader(b))
			if err != nil && storage.Retryable(err) {
				// The writer is spent: resume from the saved handle.
				m2, rerr := x.d.ResumeMultipart(ctx, h)
				if rerr != nil {
					t.Fatalf("resume after a failed Append: %v", rerr)
				}
				m = m2
			}
			return err
		})
		if err != nil {
			t.Fatalf("Append(%d): %v", n, err)
		}
		want = append(want, b...)
	}
	x.p.setRule(once(op("PUT blob "+x.root+"/_stratus/uploads/", "/seg-"), fault{dropAnswer: true}))
	appendChunk(100 << 10) // a tail segment
	x.p.setRule(once(op("PUT block "+x.root+"/"+key, ""), fault{dropAnswer: true}))
	appendChunk(600 << 10) // fills two blocks, leaves a segment
	appendChunk(50 << 10)
	faults := x.p.faultCount()
	x.p.setRule(once(op("PUT blocklist "+x.root+"/"+key, ""), fault{dropAnswer: true}))
	defer x.p.setRule(nil)
	var info storage.Info
	err = retryCaller(t, "commit", func() error {
		var err error
		info, err = m.Commit(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("Commit after a lost answer: %v", err)
	}
	if x.p.faultCount() != faults+1 {
		t.Fatalf("the proxy dropped %d Put Block List answers; want 1", x.p.faultCount()-faults)
	}
	if info.Size != int64(len(want)) {
		t.Fatalf("Commit = %+v; want size %d", info, len(want))
	}
	if got := x.content(key); !bytes.Equal(got, want) {
		t.Fatalf("committed %d bytes differ from the %d appended", len(got), len(want))
	}
	if n := len(x.p.requests("PUT blocklist " + x.root + "/" + key)); n > 2 {
		t.Errorf("%d Put Block List requests; want at most 2", n)
	}
	// Nothing of the write is left behind.
	x.wantNoBookkeeping(t)
	if err := x.plain.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
}

func (x *proxied) wantNoBookkeeping(t *testing.T) {
	t.Helper()
	seen := x.p.requests("_stratus/uploads/")
	if len(seen) == 0 {
		t.Fatalf("no bookkeeping requests seen")
	}
	// List through the internal prefix is hidden from List; ask Azurite.
	srv := azuretest.Start(t)
	pager := srv.Client().NewContainerClient(srv.Container).NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Segment.BlobItems {
			if strings.HasPrefix(*it.Name, x.root+"/_stratus/") {
				t.Errorf("left behind after Commit: %s", *it.Name)
			}
		}
	}
}

func (x *proxied) delete(t *testing.T) {
	ctx := t.Context()
	key := "tags/latest"
	if _, err := x.plain.Put(ctx, key, bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	x.p.setRule(once(op("DELETE blob "+x.root+"/"+key, ""), fault{dropAnswer: true}))
	defer x.p.setRule(nil)
	if err := retryCaller(t, "delete", func() error { return x.d.Delete(ctx, key) }); err != nil {
		t.Fatalf("Delete after a lost answer: %v", err)
	}
	if _, err := x.plain.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v; want ErrNotFound", err)
	}
}

func (x *proxied) deleteBatch(t *testing.T) {
	ctx := t.Context()
	var keys []string
	for i := range 5 {
		k := "links/" + string(rune('a'+i))
		keys = append(keys, k)
		if _, err := x.plain.Put(ctx, k, bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	x.p.setRule(once(func(desc string, r *http.Request) bool {
		return r.Method == http.MethodPost || strings.HasPrefix(desc, "DELETE blob "+x.root+"/links/")
	}, fault{dropAnswer: true}))
	defer x.p.setRule(nil)
	if err := retryCaller(t, "delete batch", func() error { return x.d.DeleteBatch(ctx, keys) }); err != nil {
		t.Fatalf("DeleteBatch after a lost answer: %v", err)
	}
	page, err := x.plain.List(ctx, "links/", "", 0)
	if err != nil || len(page.Objects) != 0 {
		t.Fatalf("List after DeleteBatch = %+v, %v; want empty", page.Objects, err)
	}
}

// TestFailedAppendKeepsHandle: Appends that fail on the store (persistent
// 503s on block stages or segment writes) leave the saved handle usable;
// resumed from it in a fresh instance, the write overwrites what the
// failed attempts staged, and every block is sent a bounded number of times.
func TestFailedAppendKeepsHandle(t *testing.T) {
	x := newProxied(t, 1)
	ctx := t.Context()
	key := "data/failing"
	m, err := x.d.NewMultipart(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	const chunk = 100 << 10 // below one block: tail segments, then blocks
	for i := range 12 {
		b := randData(chunk + i)
		h, err := m.Handle()
		if err != nil {
			t.Fatal(err)
		}
		// Every third Append fails once: on its block stage or segment.
		if i%3 == 2 {
			x.p.setRule(always(op("PUT b", x.root+"/"), fault{status: 503, code: "ServerBusy"}))
			_, err := m.Append(ctx, bytes.NewReader(b))
			x.p.setRule(nil)
			if !storage.Retryable(err) || !storage.Throttled(err) {
				t.Fatalf("Append against ServerBusy: %v; want a throttled transient error", err)
			}
			if _, err := m.Append(ctx, bytes.NewReader(b)); err == nil {
				t.Fatalf("Append on a failed writer succeeded")
			}
			m, err = x.d.ResumeMultipart(ctx, h)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if m.Size() != int64(len(want)) {
				t.Fatalf("resumed Size = %d; want %d", m.Size(), len(want))
			}
		}
		if _, err := m.Append(ctx, bytes.NewReader(b)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		want = append(want, b...)
	}
	info, err := m.Commit(ctx)
	if err != nil || info.Size != int64(len(want)) {
		t.Fatalf("Commit = %+v, %v; want size %d", info, err, len(want))
	}
	if got := x.content(key); !bytes.Equal(got, want) {
		t.Fatalf("committed bytes differ from the appended ones")
	}
	staged := x.p.bytesSent("PUT block " + x.root + "/" + key)
	segs := x.p.bytesSent("PUT blob " + x.root + "/_stratus/")
	t.Logf("%d bytes appended: %d sent as blocks, %d as tail segments, %d faults", len(want), staged, segs, x.p.faultCount())
	// Each byte is staged once, plus blocks re-staged after a failure
	// (at most one block per failed Append); segments hold each byte
	// once, plus the 503'd attempts that never reached Azurite.
	if limit := int64(len(want)) + 4*256<<10; staged > limit {
		t.Errorf("%d bytes sent as blocks; want at most %d", staged, limit)
	}
	if limit := 2 * int64(len(want)); segs > limit {
		t.Errorf("%d bytes sent as segments; want at most %d", segs, limit)
	}
	x.wantNoBookkeeping(t)
	if err := x.plain.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
}

// TestErrorClassification: persistent 503 ServerBusy and 429 are
// throttling, 500 is transient, each after a bounded number of attempts;
// 403 and a missing container are permanent and say what is wrong; a
// cancelled context is returned as is.
func TestErrorClassification(t *testing.T) {
	x := newProxied(t, 2)
	ctx := t.Context()
	if _, err := x.plain.Put(ctx, "k", bytes.NewReader([]byte("v")), storage.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status              int
		code                string
		retryable, throttle bool
		message             string
	}{
		{503, "ServerBusy", true, true, ""},
		{429, "", true, true, ""},
		{500, "InternalError", true, false, ""},
		{503, "", true, false, ""},
		{500, "OperationTimedOut", true, false, ""},
		{403, "AuthorizationPermissionMismatch", false, false, "Storage Blob Data Contributor"},
		{404, "ContainerNotFound", false, false, "container does not exist"},
	}
	for _, tt := range tests {
		x.p.setRule(always(op("", ""), fault{status: tt.status, code: tt.code}))
		before := x.p.faultCount()
		start := time.Now()
		_, err := x.d.Stat(ctx, "k")
		attempts := x.p.faultCount() - before
		x.p.setRule(nil)
		if err == nil {
			t.Fatalf("%d %s: Stat succeeded", tt.status, tt.code)
		}
		if storage.Retryable(err) != tt.retryable || storage.Throttled(err) != tt.throttle {
			t.Errorf("%d %s: Retryable %v Throttled %v; want %v %v (%v)", tt.status, tt.code,
				storage.Retryable(err), storage.Throttled(err), tt.retryable, tt.throttle, err)
		}
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%d %s: error is ErrNotFound: %v", tt.status, tt.code, err)
		}
		if tt.message != "" && !strings.Contains(err.Error(), tt.message) {
			t.Errorf("%d %s: error %q does not say %q", tt.status, tt.code, err, tt.message)
		}
		wantAttempts := 1
		if tt.retryable {
			wantAttempts = 3 // max_retries 2
		}
		if attempts != wantAttempts {
			t.Errorf("%d %s: %d attempts; want %d", tt.status, tt.code, attempts, wantAttempts)
		}
		t.Logf("%d %s: %d attempts in %v: %v", tt.status, tt.code, attempts, time.Since(start).Round(time.Millisecond), err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := x.d.Stat(cancelled, "k"); !errors.Is(err, context.Canceled) || storage.Retryable(err) {
		t.Errorf("Stat with a cancelled context: %v; want context.Canceled, not transient", err)
	}
	if _, err := x.d.Reader(ctx, "k", 0, -1); err != nil {
		t.Fatalf("Reader once the faults stop: %v", err)
	}
}

// TestMisconfiguration: a wrong key and a missing container against the
// real Azurite are permanent errors that name the cause.
func TestMisconfiguration(t *testing.T) {
	srv := azuretest.Start(t)
	ctx := t.Context()
	cfg := srv.Config("")
	cfg.AccountKey = "c3RyYXR1cy13cm9uZy1rZXk=" // valid base64, wrong key
	_, err := newTestDriver(t, cfg).Stat(ctx, "k")
	if err == nil || storage.Retryable(err) || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("Stat with a wrong key: %v; want a permanent access-denied error", err)
	}
	cfg = srv.Config("")
	cfg.Container = "no-such-container"
	for _, call := range []func(d *azure.Driver) error{
		func(d *azure.Driver) error { _, err := d.Stat(ctx, "k"); return err },
		func(d *azure.Driver) error {
			_, err := d.Put(ctx, "k", bytes.NewReader(nil), storage.PutOptions{Size: 0})
			return err
		},
		func(d *azure.Driver) error { _, err := d.List(ctx, "", "", 0); return err },
	} {
		err := call(newTestDriver(t, cfg))
		if err == nil || storage.Retryable(err) || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "no-such-container") {
			t.Errorf("missing container: %v; want a permanent error naming it", err)
		}
	}
	// Reading a blob that is only uncommitted blocks is not found.
	d := newTestDriver(t, srv.Config("misc"))
	m, err := d.NewMultipart(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, io.LimitReader(rand.Reader, 20<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "k"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a blob with only uncommitted blocks: %v; want ErrNotFound", err)
	}
	if err := m.Abort(ctx); err != nil {
		t.Fatal(err)
	}
}
