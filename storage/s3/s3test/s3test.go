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
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratus-registry/stratus/internal/launch"
	"github.com/stratus-registry/stratus/storage/s3"
)

// minioVersion is the pinned release integration/test.sh installs.
const minioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// installHint tells a developer how to get the binary.
const installHint = "GOBIN=$HOME/.cache/stratus-tools/bin go install github.com/minio/minio@" + minioVersion + "\n" +
	"or run bash integration/test.sh"

// Server is a running MinIO.
type Server struct {
	// Endpoint is the S3 API URL, http://127.0.0.1:<port>.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Bucket exists when Start returns.
	Bucket string

	dir  string
	proc *launch.Process
}

// The shared server of this test binary. Package state is the point here:
// every test in the binary must find the same server.
var shared = launch.Shared[*Server]{Name: "minio"}

// Start returns the test binary's MinIO, starting it on the first call.
// Without the minio binary it skips the test, or fails it when $CI is set
// (CI must not pass by skipping). Stop it with Main or StopShared.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return shared.Start(tb, FindBinary, Launch)
}

// Main runs the tests, then stops the shared server if one was started.
func Main(m *testing.M) int { return launch.Main(m, &shared) }

// StopShared stops the shared server, if one was started.
func StopShared() error { return shared.Close() }

// FindBinary looks for minio in PATH, then $STRATUS_TOOLS_DIR/bin, then
// ~/.cache/stratus-tools/bin.
func FindBinary() (string, error) { return launch.Find("minio", installHint) }

// Launch starts a MinIO of its own (not the shared one) from the binary at
// bin, waits until it is live and has a bucket. Close it when done.
func Launch(bin string) (*Server, error) {
	return launch.InTempDir("s3test-minio-", func(dir string) (*Server, error) {
		return launchIn(context.Background(), bin, dir)
	})
}

func launchIn(ctx context.Context, bin, dir string) (*Server, error) {
	apiPort, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + launch.LocalAddr(apiPort),
		AccessKey: "stratus-test",
		SecretKey: "stratus-test-secret",
		Bucket:    "stratus-test",
		dir:       dir,
	}
	s.proc, err = launch.Start(ctx, launch.Spec{
		Name: "minio",
		Path: bin,
		Args: []string{"server", filepath.Join(dir, "data"),
			"--address", launch.LocalAddr(apiPort),
			"--console-address", launch.LocalAddr(consolePort),
			"--quiet"},
		Env: []string{
			"MINIO_ROOT_USER=" + s.AccessKey,
			"MINIO_ROOT_PASSWORD=" + s.SecretKey,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off",
			"MINIO_CI_CD=on", // allows a data directory on the root disk
			"HOME=" + dir,    // MinIO keeps client config under $HOME
		},
		Ready:        []launch.Check{launch.HTTPGet(nil, s.Endpoint+"/minio/health/live", http.StatusOK)},
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
func (s *Server) Log() string { return s.proc.Log() }

// Close stops the server (SIGTERM, then SIGKILL after 5s) and removes its
// data directory.
func (s *Server) Close() error {
	return errors.Join(s.proc.Stop(), os.RemoveAll(s.dir))
}
