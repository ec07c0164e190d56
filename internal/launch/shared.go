package launch

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// Shared is the one server of a test binary, started by the first test
// that needs it and stopped from TestMain (see Main). It is meant to be a
// package-level variable of a launcher package: every test in the binary
// must find the same server. A failed start is remembered, so that the
// tests after it fail at once instead of trying again.
type Shared[T io.Closer] struct {
	// Name is the server in messages ("minio").
	Name string

	mu      sync.Mutex
	started bool
	srv     T
	err     error
}

// Get returns the server, calling start on the first call (and after
// Close). Concurrent callers wait for that one start.
func (s *Shared[T]) Get(start func() (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.srv, s.err = start()
		s.started = true
	}
	return s.srv, s.err
}

// MustGet is Get that fails the test when the server cannot start.
func (s *Shared[T]) MustGet(tb testing.TB, start func() (T, error)) T {
	tb.Helper()
	srv, err := s.Get(start)
	if err != nil {
		tb.Fatalf("starting %s: %v", s.Name, err)
	}
	return srv
}

// Start is what a launcher's Start(tb) does: it finds the binary (find,
// usually wrapping Find), skips the test without it or fails it under $CI
// (Require), then returns the shared server, started from that binary on
// the first call.
func (s *Shared[T]) Start(tb testing.TB, find func() (string, error), start func(bin string) (T, error)) T {
	tb.Helper()
	bin, err := find()
	if err != nil {
		Require(tb, err) // ends the test
		var zero T
		return zero
	}
	return s.MustGet(tb, func() (T, error) { return start(bin) })
}

// Close stops the server if one was started; a later Get starts a new one.
func (s *Shared[T]) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.srv, s.started && s.err == nil
	var zero T
	s.started, s.srv, s.err = false, zero, nil
	if !ok {
		return nil
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("stopping %s: %w", s.Name, err)
	}
	return nil
}

// Main runs the tests, then closes every shared server (reporting any
// error on stderr), and returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(launch.Main(m, &shared)) }
func Main(m *testing.M, shared ...io.Closer) int {
	code := m.Run()
	for _, s := range shared {
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}
