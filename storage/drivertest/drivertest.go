// Package drivertest is the conformance suite every storage.Driver passes.
//
// A driver runs the whole suite with one call:
//
//	func TestDriver(t *testing.T) {
//		drivertest.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t) })
//	}
//
// newDriver returns a fresh driver instance on every call, over the same
// backing store (the same root directory, bucket or in-memory store), so the
// suite can check that a multipart write resumes in another instance. It
// should close the driver through t.Cleanup. Each subtest works under its
// own random key prefix and empties it when done.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stratus-registry/stratus/storage"
)

// Config adjusts the suite to what a driver can promise.
type Config struct {
	// SkipBoundedMemory turns off the heap checks of the large-object
	// test, for drivers that keep objects in memory by design.
	SkipBoundedMemory bool
	// LargeSize is the size of the large-object test. Zero means 1 GiB, or
	// 64 MiB with -short.
	LargeSize int64
}

// Run runs the suite with the default Config.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	RunWith(t, newDriver, Config{})
}

// RunWith runs the suite with cfg.
func RunWith(t *testing.T, newDriver func(t *testing.T) storage.Driver, cfg Config) {
	if cfg.LargeSize <= 0 {
		cfg.LargeSize = 1 << 30
		if testing.Short() {
			cfg.LargeSize = 64 << 20
		}
	}
	s := &suite{newDriver: newDriver, cfg: cfg}
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"round trip", s.testRoundTrip},
		{"ETag changes with content", s.testETag},
		{"Reader ranges", s.testRanges},
		{"missing key is ErrNotFound", s.testNotFound},
		{"invalid keys are ErrInvalidKey", s.testInvalidKeys},
		{"overwrite: second Put wins", s.testOverwrite},
		{"create-only", s.testCreateOnly},
		{"create-only race has one winner", s.testCreateOnlyRace},
		{"concurrent writers to distinct keys", s.testConcurrentDistinct},
		{"concurrent writers to one key never mix", s.testConcurrentSameKey},
		{"List", s.testList},
		{"multipart odd sizes", s.testMultipartOddSizes},
		{"multipart empty commit", s.testMultipartEmpty},
		{"multipart resumes in a fresh instance", s.testMultipartResume},
		{"multipart failed Append leaves no bytes", s.testMultipartFailedAppend},
		{"multipart Abort", s.testMultipartAbort},
		{"multipart garbage handle", s.testMultipartGarbageHandle},
		{"multipart Commit overwrites", s.testMultipartOverwrite},
		{"context cancellation", s.testCancel},
		{"large object streams", s.testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, s.newEnv(t)) })
	}
}

type suite struct {
	newDriver func(t *testing.T) storage.Driver
	cfg       Config
}

// env is one subtest's driver and key prefix.
type env struct {
	t      *testing.T
	d      storage.Driver
	prefix string
	ctx    context.Context
}

// newEnv gives the subtest its own prefix and, when it ends, deletes what
// is left under it and checks the prefix really is empty: a driver whose
// Delete or List lies fails here.
func (s *suite) newEnv(t *testing.T) *env {
	e := &env{t: t, d: s.newDriver(t), prefix: "drivertest/" + rand.Text() + "/", ctx: t.Context()}
	// Registered after newDriver's own cleanup, so it runs before the
	// driver is closed. t.Context is already cancelled by then.
	t.Cleanup(func() {
		ctx := context.Background()
		for {
			page, err := e.d.List(ctx, e.prefix, "", 0)
			if err != nil {
				t.Errorf("teardown: List(%q): %v", e.prefix, err)
				return
			}
			if len(page.Objects) == 0 {
				break
			}
			keys := make([]string, len(page.Objects))
			for i, o := range page.Objects {
				keys[i] = o.Key
			}
			if err := e.d.DeleteBatch(ctx, keys); err != nil {
				t.Errorf("teardown: DeleteBatch: %v", err)
				return
			}
			// A listing that still returns a deleted key would loop.
			again, err := e.d.List(ctx, e.prefix, "", 1)
			if err == nil && len(again.Objects) > 0 && again.Objects[0].Key == keys[0] {
				t.Errorf("teardown: %q still listed after DeleteBatch", keys[0])
				return
			}
		}
	})
	return e
}

// key returns name under the subtest's prefix.
func (e *env) key(name string) string { return e.prefix + name }

func (e *env) put(key string, data []byte) storage.Info {
	e.t.Helper()
	info, err := e.d.Put(e.ctx, key, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
	if err != nil {
		e.t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
	return info
}

func (e *env) read(key string) []byte {
	e.t.Helper()
	b, err := e.tryRead(key, 0, -1)
	if err != nil {
		e.t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func (e *env) tryRead(key string, offset, length int64) ([]byte, error) {
	rc, err := e.d.Reader(e.ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// wantContent fails unless key holds exactly want.
func (e *env) wantContent(key string, want []byte) {
	e.t.Helper()
	got := e.read(key)
	if !bytes.Equal(got, want) {
		e.t.Fatalf("content of %q: %s; want %s", key, describe(got), describe(want))
	}
}

// wantAbsent fails unless Stat reports key as not found.
func (e *env) wantAbsent(key string) {
	e.t.Helper()
	if info, err := e.d.Stat(e.ctx, key); !errors.Is(err, storage.ErrNotFound) {
		e.t.Fatalf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// describe prints short contents whole and long ones by length and head,
// so a failure message stays readable.
func describe(b []byte) string {
	const max = 32
	if len(b) <= max {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:max], len(b))
}
