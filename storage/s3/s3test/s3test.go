// Package s3test starts a throwaway MinIO server on 127.0.0.1 for tests of
// the S3 driver and of anything built on it (integration tests).
//
// MinIO takes a few seconds to start, so one server is shared by the whole
// test binary: Start launches it on first use, and TestMain stops it:
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
//
// Tests isolate themselves with a key prefix (Config(prefix)), or with a
// bucket of their own (NewBucket).
package s3test

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratus-registry/stratus/storage/s3"
)

// minioVersion is the pinned release integration/test.sh installs.
const minioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// installHint tells a developer how to get the binary.
const installHint = "minio not found in PATH, $STRATUS_TOOLS_DIR/bin or ~/.cache/stratus-tools/bin; install it with:\n" +
	"  GOBIN=$HOME/.cache/stratus-tools/bin go install github.com/minio/minio@" + minioVersion + "\n" +
	"or run bash integration/test.sh"

// Server is a running MinIO.
type Server struct {
	// Endpoint is the S3 API URL, http://127.0.0.1:<port>.
	Endpoint  string
	AccessKey string
	SecretKey string
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

// Start returns the test binary's MinIO, starting it on the first call.
// Without the minio binary it skips the test, or fails it when $CI is set
// (CI must not pass by skipping). Stop it with Main or StopShared.
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
		tb.Fatalf("starting minio: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests, then stops the shared server if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "s3test: stopping minio:", err)
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

// FindBinary looks for minio in PATH, then $STRATUS_TOOLS_DIR/bin, then
// ~/.cache/stratus-tools/bin.
func FindBinary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
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
		p := filepath.Join(d, "minio")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(installHint)
}

// Launch starts a MinIO of its own (not the shared one) from the binary at
// bin, waits until it is live and has a bucket. Close it when done.
func Launch(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "s3test-minio-")
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(apiPort),
		AccessKey: "stratus-test",
		SecretKey: "stratus-test-secret",
		Bucket:    "stratus-test",
		dir:       dir,
		exited:    make(chan struct{}),
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "server", data,
		"--address", "127.0.0.1:"+strconv.Itoa(apiPort),
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		"--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on", // allows a data directory on the root disk
		"HOME="+dir,      // MinIO keeps client config under $HOME
	)
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
		resp, err := client.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("minio exited during startup; log:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not live within %s (%v); log:\n%s", limit, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client is a plain SDK client for the server, for tests that set up or
// inspect the bucket behind the driver's back.
func (s *Server) Client() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates a bucket; one that exists is fine. MinIO answers
// 503 for a moment after it is live, which the SDK retries.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := s.Client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)})
		if err == nil || isBucketOwned(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isBucketOwned(err error) bool {
	var owned interface{ ErrorCode() string }
	if errors.As(err, &owned) {
		return owned.ErrorCode() == "BucketAlreadyOwnedByYou" || owned.ErrorCode() == "BucketAlreadyExists"
	}
	return false
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
func (s *Server) Config(prefix string) s3.Config {
	return s3.Config{
		Bucket:         s.Bucket,
		Region:         "us-east-1",
		RootDirectory:  prefix,
		Endpoint:       s.Endpoint,
		ForcePathStyle: true,
		AccessKey:      s.AccessKey,
		SecretKey:      s.SecretKey,
		RequestTimeout: 30 * time.Second,
		MaxRetries:     new(2),
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

// syncBuffer lets the server's output be read while the process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the last 64 KiB: enough for a failure message.
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
// could take it before MinIO binds it; Launch then fails loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
