package drivertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stratus-registry/stratus/storage"
)

// upload wraps a storage.Multipart with fatal-on-error helpers.
type upload struct {
	t *testing.T
	e *env
	m storage.Multipart
}

func (e *env) newUpload(key string) *upload {
	e.t.Helper()
	m, err := e.d.NewMultipart(e.ctx, key)
	if err != nil {
		e.t.Fatalf("NewMultipart(%q): %v", key, err)
	}
	return &upload{t: e.t, e: e, m: m}
}

func (e *env) resume(d storage.Driver, h []byte) *upload {
	e.t.Helper()
	m, err := d.ResumeMultipart(e.ctx, h)
	if err != nil {
		e.t.Fatalf("ResumeMultipart: %v", err)
	}
	return &upload{t: e.t, e: e, m: m}
}

func (u *upload) append(b []byte) {
	u.t.Helper()
	before := u.m.Size()
	n, err := u.m.Append(u.e.ctx, bytes.NewReader(b))
	if err != nil {
		u.t.Fatalf("Append(%d bytes) at %d: %v", len(b), before, err)
	}
	if n != int64(len(b)) || u.m.Size() != before+n {
		u.t.Fatalf("Append(%d bytes) at %d = %d, Size %d; want %d, Size %d", len(b), before, n, u.m.Size(), len(b), before+int64(len(b)))
	}
}

func (u *upload) handle() []byte {
	u.t.Helper()
	h, err := u.m.Handle()
	if err != nil {
		u.t.Fatalf("Handle: %v", err)
	}
	return h
}

func (u *upload) commit() storage.Info {
	u.t.Helper()
	info, err := u.m.Commit(u.e.ctx)
	if err != nil {
		u.t.Fatalf("Commit: %v", err)
	}
	return info
}

func (s *suite) testMultipartOddSizes(t *testing.T, e *env) {
	key := e.key("obj")
	u := e.newUpload(key)
	var want []byte
	for i, n := range []int{1, 1, 1, 0, 7 << 20, 1, 3, 0, 5<<20 + 3, 1} {
		b := randBytes(n)
		u.append(b)
		want = append(want, b...)
		if i%3 == 0 {
			e.wantAbsent(key)
		}
	}
	// Nothing under the key, not even in a listing, before Commit.
	if page, err := e.d.List(e.ctx, e.prefix, "", 0); err != nil || len(page.Objects) != 0 {
		t.Fatalf("before Commit List(prefix) = %+v, %v; want empty", page.Objects, err)
	}
	h := u.handle()
	info := u.commit()
	if info.Key != key || info.Size != int64(len(want)) {
		t.Errorf("Commit = %+v; want key %q size %d", info, key, len(want))
	}
	stat, err := e.d.Stat(e.ctx, key)
	if err != nil || stat.Size != int64(len(want)) {
		t.Errorf("Stat after Commit = %+v, %v; want size %d", stat, err, len(want))
	}
	e.wantContent(key, want)
	if m, err := e.d.ResumeMultipart(e.ctx, h); err == nil {
		_ = m.Abort(e.ctx)
		t.Errorf("ResumeMultipart of a committed upload succeeded")
	}
}

func (s *suite) testMultipartEmpty(t *testing.T, e *env) {
	key := e.key("empty")
	u := e.newUpload(key)
	if info := u.commit(); info.Size != 0 {
		t.Errorf("Commit of an empty upload = %+v; want size 0", info)
	}
	e.wantContent(key, []byte{})
	key = e.key("zero-append")
	u = e.newUpload(key)
	u.append(nil)
	u.commit()
	e.wantContent(key, []byte{})
}

func (s *suite) testMultipartResume(t *testing.T, e *env) {
	key := e.key("obj")
	parts := [][]byte{randBytes(3<<20 + 7), randBytes(1), randBytes(6 << 20), randBytes(11)}
	u := e.newUpload(key)
	u.append(parts[0])
	h := u.handle()
	var want []byte
	want = append(want, parts[0]...)
	// Each later part goes through a fresh driver instance, resumed from
	// the handle the previous one saved: as a PATCH landing on another
	// replica.
	for _, p := range parts[1:] {
		d := s.newDriver(t)
		u = e.resume(d, h)
		if u.m.Size() != int64(len(want)) {
			t.Fatalf("resumed Size = %d; want %d", u.m.Size(), len(want))
		}
		u.append(p)
		want = append(want, p...)
		h = u.handle()
		e.wantAbsent(key)
	}
	d := s.newDriver(t)
	u = e.resume(d, h)
	info := u.commit()
	if info.Size != int64(len(want)) {
		t.Errorf("Commit = %+v; want size %d", info, len(want))
	}
	e.wantContent(key, want)
}

var errBoom = errors.New("drivertest: body failed")

// failingReader yields n random bytes and then fails, as a client that
// disconnects mid-PATCH.
func failingReader(n int) io.Reader {
	return io.MultiReader(bytes.NewReader(randBytes(n)), errorReader{})
}

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) { return 0, errBoom }

func (s *suite) testMultipartFailedAppend(t *testing.T, e *env) {
	tests := []struct {
		name         string
		first        int // bytes appended before the failure
		partial      int // bytes the failing Append reads before its error
		sameInstance bool
		afterward    int // bytes appended after the resume
	}{
		{"first Append fails", 0, 1000, false, 17},
		{"fails after nothing read", 4 << 10, 0, false, 5},
		{"fails mid-part", 4 << 10, 100 << 10, false, 1 << 20},
		{"fails past a part boundary", 6 << 20, 6<<20 + 5, false, 3},
		{"resume in the same instance", 100, 5000, true, 100},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{t: t, d: e.d, prefix: e.prefix, ctx: e.ctx}
			key := e.key(fmt.Sprintf("obj-%d", i))
			u := e.newUpload(key)
			first := randBytes(tt.first)
			if tt.first > 0 {
				u.append(first)
			}
			h := u.handle()
			_, err := u.m.Append(e.ctx, failingReader(tt.partial))
			if err == nil {
				t.Fatalf("Append of a failing body succeeded")
			}
			if !errors.Is(err, errBoom) {
				t.Logf("Append error does not wrap the body's error: %v", err)
			}
			d := e.d
			if !tt.sameInstance {
				d = s.newDriver(t)
			}
			u = e.resume(d, h)
			if u.m.Size() != int64(tt.first) {
				t.Fatalf("Size after resume = %d; want %d", u.m.Size(), tt.first)
			}
			rest := randBytes(tt.afterward)
			u.append(rest)
			u.commit()
			e.wantContent(key, append(first, rest...))
		})
	}
}

func (s *suite) testMultipartAbort(t *testing.T, e *env) {
	wantGone := func(d storage.Driver, h []byte) {
		t.Helper()
		m, err := d.ResumeMultipart(e.ctx, h)
		if err == nil {
			_ = m.Abort(e.ctx)
			t.Fatalf("ResumeMultipart after Abort succeeded")
		}
		if !errors.Is(err, storage.ErrHandleExpired) && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("ResumeMultipart after Abort: %v; want ErrHandleExpired or ErrNotFound", err)
		}
	}

	key := e.key("obj")
	u := e.newUpload(key)
	u.append(randBytes(1 << 20))
	h := u.handle()
	if err := u.m.Abort(e.ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := u.m.Abort(e.ctx); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	wantGone(e.d, h)
	wantGone(s.newDriver(t), h)
	e.wantAbsent(key)

	// Abort with no Append, and Abort through a resumed instance.
	u = e.newUpload(key)
	if err := u.m.Abort(e.ctx); err != nil {
		t.Fatalf("Abort of an empty upload: %v", err)
	}
	u = e.newUpload(key)
	u.append([]byte("abc"))
	h = u.handle()
	other := e.resume(s.newDriver(t), h)
	if err := other.m.Abort(e.ctx); err != nil {
		t.Fatalf("Abort through another instance: %v", err)
	}
	wantGone(e.d, h)
	e.wantAbsent(key)
}

func (s *suite) testMultipartGarbageHandle(t *testing.T, e *env) {
	handles := map[string][]byte{
		"nil":           nil,
		"empty":         {},
		"truncated":     []byte("{"),
		"null":          []byte("null"),
		"array":         []byte("[]"),
		"empty object":  []byte("{}"),
		"string":        []byte(`"abc"`),
		"path escape":   []byte(`{"id":"../../../../etc/passwd","key":"x","size":0}`),
		"unknown id":    []byte(`{"id":"NOSUCHUPLOAD","key":"a/b","size":5}`),
		"negative size": []byte(`{"id":"NOSUCHUPLOAD","key":"a/b","size":-1}`),
		"invalid key":   []byte(`{"id":"NOSUCHUPLOAD","key":"../x","size":0}`),
		"random":        randBytes(64),
		"large random":  randBytes(1 << 20),
	}
	for name, h := range handles {
		m, err := e.d.ResumeMultipart(e.ctx, h)
		if err == nil {
			_ = m.Abort(e.ctx)
			t.Errorf("ResumeMultipart(%s) succeeded; want an error", name)
		}
	}
	// A real handle with its last byte cut off is garbage too.
	u := e.newUpload(e.key("obj"))
	u.append([]byte("abc"))
	h := u.handle()
	if m, err := e.d.ResumeMultipart(e.ctx, h[:len(h)-1]); err == nil {
		_ = m.Abort(e.ctx)
		t.Errorf("ResumeMultipart(truncated real handle) succeeded; want an error")
	}
	if err := u.m.Abort(e.ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
}

func (s *suite) testMultipartOverwrite(t *testing.T, e *env) {
	key := e.key("obj")
	e.put(key, []byte("old object, longer than the new one"))
	u := e.newUpload(key)
	u.append([]byte("new"))
	e.wantContent(key, []byte("old object, longer than the new one"))
	u.commit()
	e.wantContent(key, []byte("new"))
}
