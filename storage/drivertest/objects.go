package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// clockSlack allows for stores that keep modification times in whole
// seconds and for a store clock slightly apart from ours.
const clockSlack = 5 * time.Second

func (s *suite) testRoundTrip(t *testing.T, e *env) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"small", []byte("hello, stratus")},
		{"5MiB+1 random", randBytes(5<<20 + 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{t: t, d: e.d, prefix: e.prefix, ctx: e.ctx}
			key := e.key(tt.name)
			before := time.Now()
			put := e.put(key, tt.data)
			after := time.Now()
			if put.Key != key || put.Size != int64(len(tt.data)) {
				t.Errorf("Put returned %+v; want key %q size %d", put, key, len(tt.data))
			}
			info, err := e.d.Stat(e.ctx, key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if info.Key != key || info.Size != int64(len(tt.data)) {
				t.Errorf("Stat = %+v; want key %q size %d", info, key, len(tt.data))
			}
			if info.ModTime.Before(before.Add(-clockSlack)) || info.ModTime.After(after.Add(clockSlack)) {
				t.Errorf("Stat ModTime %v not within [%v, %v] (slack %v)", info.ModTime, before, after, clockSlack)
			}
			if put.ETag != "" && info.ETag != "" && put.ETag != info.ETag {
				t.Errorf("ETag from Put %q differs from Stat %q", put.ETag, info.ETag)
			}
			e.wantContent(key, tt.data)
			if err := e.d.Delete(e.ctx, key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			e.wantAbsent(key)
		})
	}
}

func (s *suite) testETag(t *testing.T, e *env) {
	key := e.key("obj")
	seen := map[string]int{}
	// Same-size contents written back to back: an ETag built from size
	// and a coarse clock would repeat here.
	for i := range 5 {
		e.put(key, fmt.Appendf(nil, "content-%d", i))
		info, err := e.d.Stat(e.ctx, key)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if info.ETag == "" {
			t.Skip("driver reports no ETags")
		}
		if prev, ok := seen[info.ETag]; ok {
			t.Fatalf("ETag %q of write %d repeats write %d's, with different content", info.ETag, i, prev)
		}
		seen[info.ETag] = i
	}
}

func (s *suite) testRanges(t *testing.T, e *env) {
	data := randBytes(1000)
	key := e.key("obj")
	e.put(key, data)
	empty := e.key("empty")
	e.put(empty, nil)
	tests := []struct {
		name           string
		key            string
		offset, length int64
		want           []byte
		wantErr        error
	}{
		{"whole", key, 0, -1, data, nil},
		{"from offset to end", key, 10, -1, data[10:], nil},
		{"offset and length", key, 10, 20, data[10:30], nil},
		{"zero length", key, 10, 0, []byte{}, nil},
		{"length past end truncated", key, 990, 50, data[990:], nil},
		{"huge length truncated", key, 0, 1 << 40, data, nil},
		{"last byte", key, 999, 1, data[999:], nil},
		{"offset at size is empty", key, 1000, -1, []byte{}, nil},
		{"offset at size with length is empty", key, 1000, 10, []byte{}, nil},
		{"offset past size", key, 1001, -1, nil, storage.ErrInvalidRange},
		{"offset far past size", key, 1 << 30, 5, nil, storage.ErrInvalidRange},
		{"empty object whole", empty, 0, -1, []byte{}, nil},
		{"empty object offset past size", empty, 1, -1, nil, storage.ErrInvalidRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.tryRead(tt.key, tt.offset, tt.length)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Reader(%d, %d) = %s, %v; want %v", tt.offset, tt.length, describe(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reader(%d, %d): %v", tt.offset, tt.length, err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("Reader(%d, %d) = %s; want %s", tt.offset, tt.length, describe(got), describe(tt.want))
			}
		})
	}
}

func (s *suite) testNotFound(t *testing.T, e *env) {
	key := e.key("missing")
	if _, err := e.d.Stat(e.ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat missing: %v; want ErrNotFound", err)
	}
	for _, r := range []struct{ offset, length int64 }{{0, -1}, {0, 10}, {5, -1}} {
		if _, err := e.tryRead(key, r.offset, r.length); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Reader(missing, %d, %d): %v; want ErrNotFound", r.offset, r.length, err)
		}
	}
	if err := e.d.Delete(e.ctx, key); err != nil {
		t.Errorf("Delete missing: %v; want nil", err)
	}
	if err := e.d.DeleteBatch(e.ctx, []string{key, e.key("also/missing")}); err != nil {
		t.Errorf("DeleteBatch missing: %v; want nil", err)
	}
	if err := e.d.DeleteBatch(e.ctx, nil); err != nil {
		t.Errorf("DeleteBatch(nil): %v; want nil", err)
	}
	// A key whose parent "directory" is itself a key: filesystem-backed
	// drivers must still say not found, not "not a directory".
	parent := e.key("file")
	e.put(parent, []byte("x"))
	if _, err := e.d.Stat(e.ctx, parent+"/child"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(key below an object): %v; want ErrNotFound", err)
	}
	if _, err := e.tryRead(parent+"/child", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Reader(key below an object): %v; want ErrNotFound", err)
	}
	// A key that is only a prefix of other keys is not an object either.
	e.put(e.key("dir/child"), []byte("x"))
	if _, err := e.d.Stat(e.ctx, e.key("dir")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(prefix of a key): %v; want ErrNotFound", err)
	}
	if _, err := e.tryRead(e.key("dir"), 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Reader(prefix of a key): %v; want ErrNotFound", err)
	}
	if err := e.d.Delete(e.ctx, e.key("dir")); err != nil {
		t.Errorf("Delete(prefix of a key): %v; want nil", err)
	}
	e.wantContent(e.key("dir/child"), []byte("x"))
}

func (s *suite) testInvalidKeys(t *testing.T, e *env) {
	keys := []string{
		"", "/abs", "a/../b", "a//b", "./a", "a/", "a/.", "..",
		e.key("a//b"), e.key("../escape"), e.key("a/./b"), e.key("trailing/"),
	}
	body := []byte("must not be stored")
	ops := []struct {
		name string
		call func(key string) error
	}{
		{"Stat", func(k string) error { _, err := e.d.Stat(e.ctx, k); return err }},
		{"Reader", func(k string) error { _, err := e.d.Reader(e.ctx, k, 0, -1); return err }},
		{"Put", func(k string) error {
			_, err := e.d.Put(e.ctx, k, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))})
			return err
		}},
		{"Put create-only", func(k string) error {
			_, err := e.d.Put(e.ctx, k, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body)), CreateOnly: true})
			return err
		}},
		{"Delete", func(k string) error { return e.d.Delete(e.ctx, k) }},
		{"DeleteBatch", func(k string) error { return e.d.DeleteBatch(e.ctx, []string{e.key("valid"), k}) }},
		{"NewMultipart", func(k string) error {
			m, err := e.d.NewMultipart(e.ctx, k)
			if err == nil {
				_ = m.Abort(e.ctx)
			}
			return err
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, k := range keys {
				if err := op.call(k); !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("%s(%q): %v; want ErrInvalidKey", op.name, k, err)
				}
			}
		})
	}
	page, err := e.d.List(e.ctx, e.prefix, "", 0)
	if err != nil || len(page.Objects) != 0 {
		t.Errorf("after invalid writes List(prefix) = %+v, %v; want empty", page.Objects, err)
	}
}

func (s *suite) testOverwrite(t *testing.T, e *env) {
	key := e.key("obj")
	e.put(key, []byte("first, longer content"))
	second := []byte("second")
	e.put(key, second)
	e.wantContent(key, second)
	info, err := e.d.Stat(e.ctx, key)
	if err != nil || info.Size != int64(len(second)) {
		t.Fatalf("Stat after overwrite = %+v, %v; want size %d", info, err, len(second))
	}
}

func (s *suite) testCreateOnly(t *testing.T, e *env) {
	key := e.key("obj")
	createOnly := func(data []byte) (storage.Info, error) {
		return e.d.Put(e.ctx, key, bytes.NewReader(data), storage.PutOptions{CreateOnly: true, Size: int64(len(data))})
	}
	first := []byte("first")
	if _, err := createOnly(first); err != nil {
		t.Fatalf("first create-only Put: %v", err)
	}
	if _, err := createOnly([]byte("second, a different size")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create-only Put: %v; want ErrExists", err)
	}
	e.wantContent(key, first)
	// Once deleted, the key can be created again.
	if err := e.d.Delete(e.ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	third := []byte("third")
	if _, err := createOnly(third); err != nil {
		t.Fatalf("create-only Put after Delete: %v", err)
	}
	e.wantContent(key, third)
}

func (s *suite) testCreateOnlyRace(t *testing.T, e *env) {
	const writers = 16
	for round := range 3 {
		key := e.key(fmt.Sprintf("obj-%d", round))
		bodies := make([][]byte, writers)
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			bodies[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
			wg.Go(func() {
				<-start
				_, errs[i] = e.d.Put(e.ctx, key, bytes.NewReader(bodies[i]), storage.PutOptions{CreateOnly: true, Size: int64(len(bodies[i]))})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both won a create-only race", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, storage.ErrExists):
				t.Fatalf("round %d: writer %d: %v; want nil or ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		e.wantContent(key, bodies[winner])
	}
}

func (s *suite) testConcurrentDistinct(t *testing.T, e *env) {
	const writers = 16
	bodies := make([][]byte, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		bodies[i] = randBytes(32<<10 + i)
		wg.Go(func() {
			k := e.key(fmt.Sprintf("w/%02d", i))
			_, errs[i] = e.d.Put(e.ctx, k, bytes.NewReader(bodies[i]), storage.PutOptions{Size: int64(len(bodies[i]))})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		e.wantContent(e.key(fmt.Sprintf("w/%02d", i)), bodies[i])
	}
}

// testConcurrentSameKey races whole-object writers and readers on one key:
// every read must see one writer's complete body.
func (s *suite) testConcurrentSameKey(t *testing.T, e *env) {
	const (
		writers = 8
		size    = 256 << 10
		reads   = 40
	)
	key := e.key("obj")
	body := func(i int) []byte { return bytes.Repeat([]byte{byte('A' + i)}, size) }
	e.put(key, body(writers))
	check := func(b []byte) error {
		if len(b) != size {
			return fmt.Errorf("read %d bytes, want %d", len(b), size)
		}
		if n := bytes.Count(b, b[:1]); n != size {
			return fmt.Errorf("read a mix of writers: %d of %d bytes are %q", n, size, b[0])
		}
		return nil
	}
	errs := make(chan error, writers+reads)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := e.d.Put(e.ctx, key, bytes.NewReader(body(i)), storage.PutOptions{Size: size}); err != nil {
				errs <- fmt.Errorf("writer %d: %w", i, err)
			}
		})
	}
	wg.Go(func() {
		for range reads {
			b, err := e.tryRead(key, 0, -1)
			if err == nil {
				err = check(b)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := check(e.read(key)); err != nil {
		t.Fatalf("final content: %v", err)
	}
}

// zeros is read-only filler for cancelAfter.
var zeros [32 << 10]byte

// cancelAfter is a body that cancels its context after n bytes and keeps
// producing, as a client whose request is abandoned mid-stream.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n := copy(p, zeros[:])
	c.n -= n
	return n, nil
}

func (s *suite) testCancel(t *testing.T, e *env) {
	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	key := e.key("obj")
	body := []byte("never stored")

	t.Run("Put with cancelled context stores nothing", func(t *testing.T) {
		_, err := e.d.Put(cancelled, key, bytes.NewReader(body), storage.PutOptions{Size: int64(len(body))})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put: %v; want context.Canceled", err)
		}
		e.wantAbsent(key)
	})
	t.Run("Put cancelled mid-stream keeps the old object", func(t *testing.T) {
		old := []byte("old content")
		e.put(key, old)
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		_, err := e.d.Put(ctx, key, io.LimitReader(&cancelAfter{n: 1 << 20, cancel: cancel}, 64<<20), storage.PutOptions{Size: 64 << 20})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put: %v; want context.Canceled", err)
		}
		e.wantContent(key, old)
		newKey := e.key("new")
		ctx, cancel = context.WithCancel(e.ctx)
		defer cancel()
		_, err = e.d.Put(ctx, newKey, io.LimitReader(&cancelAfter{n: 1 << 20, cancel: cancel}, 64<<20), storage.PutOptions{Size: -1, CreateOnly: true})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("create-only Put: %v; want context.Canceled", err)
		}
		e.wantAbsent(newKey)
	})
	t.Run("Reader with cancelled context", func(t *testing.T) {
		e.put(key, body)
		rc, err := e.d.Reader(cancelled, key, 0, -1)
		if err == nil {
			// A lazy driver may only notice on the first Read.
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Reader: %v; want context.Canceled", err)
		}
	})
	t.Run("Append with cancelled context", func(t *testing.T) {
		m, err := e.d.NewMultipart(e.ctx, e.key("upload"))
		if err != nil {
			t.Fatalf("NewMultipart: %v", err)
		}
		defer func() { _ = m.Abort(e.ctx) }()
		if _, err := m.Append(e.ctx, bytes.NewReader(body)); err != nil {
			t.Fatalf("Append: %v", err)
		}
		h, err := m.Handle()
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if _, err := m.Append(cancelled, bytes.NewReader(body)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Append: %v; want context.Canceled", err)
		}
		m2, err := e.d.ResumeMultipart(e.ctx, h)
		if err != nil {
			t.Fatalf("ResumeMultipart: %v", err)
		}
		if m2.Size() != int64(len(body)) {
			t.Fatalf("Size after resume = %d; want %d", m2.Size(), len(body))
		}
		if _, err := m2.Commit(e.ctx); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		e.wantContent(e.key("upload"), body)
	})
}
