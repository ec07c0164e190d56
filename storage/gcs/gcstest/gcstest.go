// Package gcstest starts a throwaway fake-gcs-server on 127.0.0.1 for
// tests of the GCS driver and of anything built on it (integration tests).
//
// One server is shared by the whole test binary: Start launches it on
// first use, and TestMain stops it:
//
//	func TestMain(m *testing.M) { os.Exit(gcstest.Main(m)) }
//
// Tests isolate themselves with a key prefix (Config(prefix)), or with a
// bucket of their own (NewBucket).
//
// The emulator is run with -scheme http and -public-host set to its own
// address, so that the client's XML-API reads (GET /<bucket>/<object>)
// route to downloads. Its known limits are listed in Limits.
package gcstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
	"github.com/stratus-registry/stratus/storage/gcs"
)

// Version is the pinned release integration/test.sh installs.
const Version = "v1.56.1"

// installHint tells a developer how to get the binary.
const installHint = "GOBIN=$HOME/.cache/stratus-tools/bin go install github.com/fsouza/fake-gcs-server@" + Version + "\n" +
	"or run bash integration/test.sh"

// Known limits of fake-gcs-server, named so that a test blocked by one
// says which.
const (
	// LimitComposePreconditions: compose, copy and delete ignore
	// preconditions (ifGenerationMatch and friends); only uploads honour
	// them.
	LimitComposePreconditions = "fake-gcs-server ignores preconditions on compose, copy and delete"
	// LimitContentRange: resumable sessions do not check the start of a
	// chunk's Content-Range.
	LimitContentRange = "fake-gcs-server does not check the Content-Range start of resumable chunks"
	// LimitStatusFinalizes: a status query (empty PUT, Content-Range
	// bytes */*) finalizes the session.
	LimitStatusFinalizes = "fake-gcs-server finalizes a resumable session on a status query"
	// LimitSignedURLs: signed URLs are served without checking the
	// signature or the expiry.
	LimitSignedURLs = "fake-gcs-server accepts signed URLs without checking them"
)

// Server is a running fake-gcs-server.
type Server struct {
	// Endpoint is the API base URL, http://127.0.0.1:<port>.
	Endpoint string
	// Bucket exists when Start returns.
	Bucket string

	dir  string
	proc *launch.Process
}

// The shared server of this test binary. Package state is the point here:
// every test in the binary must find the same server.
var shared = launch.Shared[*Server]{Name: "fake-gcs-server"}

// Start returns the test binary's server, starting it on the first call.
// Without the binary it skips the test, or fails it when $CI is set (CI
// must not pass by skipping). Stop it with Main or StopShared.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return shared.Start(tb, FindBinary, Launch)
}

// Main runs the tests, then stops the shared server if one was started.
func Main(m *testing.M) int { return launch.Main(m, &shared) }

// StopShared stops the shared server, if one was started.
func StopShared() error { return shared.Close() }

// FindBinary looks for fake-gcs-server in PATH, then
// $STRATUS_TOOLS_DIR/bin, then ~/.cache/stratus-tools/bin.
func FindBinary() (string, error) { return launch.Find("fake-gcs-server", installHint) }

// Launch starts a server of its own (not the shared one) from the binary
// at bin, with its data on disk in a temporary directory, and waits until
// it answers and has a bucket. Close it when done.
func Launch(bin string) (*Server, error) {
	return launch.InTempDir("gcstest-", func(dir string) (*Server, error) {
		return launchIn(context.Background(), bin, dir)
	})
}

func launchIn(ctx context.Context, bin, dir string) (*Server, error) {
	port, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	addr := launch.LocalAddr(port)
	s := &Server{Endpoint: "http://" + addr, Bucket: "stratus-test", dir: dir}
	s.proc, err = launch.Start(ctx, launch.Spec{
		Name: "fake-gcs-server",
		Path: bin,
		Args: []string{
			"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
			"-public-host", addr, "-external-url", s.Endpoint,
			"-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"),
			"-log-level", "warn"},
		Dir:          dir,
		Ready:        []launch.Check{launch.HTTPGet(nil, s.Endpoint+"/storage/v1/b", http.StatusOK)},
		ReadyTimeout: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	if err := s.CreateBucket(ctx, s.Bucket); err != nil {
		s.proc.Stop()
		return nil, fmt.Errorf("creating bucket: %w; log:\n%s", err, s.Log())
	}
	return s, nil
}

// CreateBucket creates a bucket through the JSON API; one that exists is
// fine.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint+"/storage/v1/b?project=stratus-test", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("create bucket %q: %s %s", name, resp.Status, msg)
	}
	return nil
}

// NewBucket creates a fresh bucket for one test and returns its name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t-%d-%d", time.Now().UnixNano(), os.Getpid())
	if err := s.CreateBucket(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	return name
}

// Config is a driver configuration for the server's bucket under prefix
// (the root_directory; empty means the bucket root).
func (s *Server) Config(prefix string) gcs.Config {
	return gcs.Config{
		Bucket:         s.Bucket,
		RootDirectory:  prefix,
		Endpoint:       s.Endpoint,
		Anonymous:      true,
		RequestTimeout: 30 * time.Second,
		MaxRetries:     new(2),
	}
}

// Log returns what the server has printed so far.
func (s *Server) Log() string { return s.proc.Log() }

// Close stops the server (SIGTERM, then SIGKILL after 5s) and removes its
// data directory.
func (s *Server) Close() error {
	return errors.Join(s.proc.Stop(), os.RemoveAll(s.dir))
}
