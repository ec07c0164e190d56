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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage/gcs"
)

// Version is the pinned release integration/test.sh installs.
const Version = "v1.56.1"

// installHint tells a developer how to get the binary.
const installHint = "fake-gcs-server not found in PATH, $STRATUS_TOOLS_DIR/bin or ~/.cache/stratus-tools/bin; install it with:\n" +
	"  GOBIN=$HOME/.cache/stratus-tools/bin go install github.com/fsouza/fake-gcs-server@" + Version + "\n" +
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

	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    syncBuffer
}

// The shared server of this test binary. Package state is the point here:
// every test in the binary must find the same server.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Start returns the test binary's server, starting it on the first call.
// Without the binary it skips the test, or fails it when $CI is set (CI
// must not pass by skipping). Stop it with Main or StopShared.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := FindBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Launch(bin)
	}
	if shared.err != nil {
		tb.Fatalf("starting fake-gcs-server: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests, then stops the shared server if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "gcstest: stopping fake-gcs-server:", err)
	}
	return code
}

// StopShared stops the shared server, if one was started.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	srv := shared.srv
	shared.srv, shared.err = nil, nil
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// FindBinary looks for fake-gcs-server in PATH, then
// $STRATUS_TOOLS_DIR/bin, then ~/.cache/stratus-tools/bin.
func FindBinary() (string, error) {
	const name = "fake-gcs-server"
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("STRATUS_TOOLS_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "stratus-tools", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(installHint)
}

// Launch starts a server of its own (not the shared one) from the binary
// at bin, with its data on disk in a temporary directory, and waits until
// it answers and has a bucket. Close it when done.
func Launch(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "gcstest-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &Server{Endpoint: "http://" + addr, Bucket: "stratus-test", dir: dir, exited: make(chan struct{})}
	cmd := exec.Command(bin,
		"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
		"-public-host", addr, "-external-url", s.Endpoint,
		"-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"),
		"-log-level", "warn")
	cmd.Dir = dir
	cmd.Stdout = &s.log
	cmd.Stderr = &s.log
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitLive(30 * time.Second); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.CreateBucket(context.Background(), s.Bucket); err != nil {
		s.Close()
		return nil, fmt.Errorf("creating bucket: %w; log:\n%s", err, s.Log())
	}
	return s, nil
}

func (s *Server) waitLive(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := client.Get(s.Endpoint + "/storage/v1/b")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("fake-gcs-server exited during startup; log:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fake-gcs-server not live within %s (%v); log:\n%s", limit, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
		MaxRetries:     2,
	}
}

// Log returns what the server has printed so far.
func (s *Server) Log() string { return s.log.String() }

// Close stops the server (SIGTERM, then SIGKILL after 5s) and removes its
// data directory.
func (s *Server) Close() error {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	return os.RemoveAll(s.dir)
}

// syncBuffer keeps the last 64 KiB the server printed, readable while the
// process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 64<<10 {
		b.buf = b.buf[len(b.buf)-64<<10:]
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// freePort asks the kernel for a port nobody listens on. Another process
// could take it before the server binds it; Launch then fails loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
