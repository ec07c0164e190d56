package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/storage/azure/azuretest"
	"github.com/stratus-registry/stratus/storage/gcs/gcstest"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// stratusBin is the binary built once by TestMain; every test runs real
// `stratus serve` processes, the way operators do.
var stratusBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stratus-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stratusBin = filepath.Join(dir, "stratus")
	build := exec.Command("go", "build", "-race", "-o", stratusBin, "github.com/stratus-registry/stratus/cmd/stratus")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stratus:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if err := s3test.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping minio:", err)
	}
	if err := azuretest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping azurite:", err)
	}
	if err := gcstest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping fake-gcs-server:", err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// backend is a storage backend every client-facing test runs on.
type backend struct {
	name string
	args func(t *testing.T) []string // `stratus serve` flags
}

// storageBackends: the filesystem, S3 on a real MinIO, Azure Blob on
// Azurite and GCS on fake-gcs-server (one server each per test binary, a
// fresh root directory per test).
func storageBackends() []backend {
	return []backend{
		{"filesystem", func(t *testing.T) []string { return []string{"--root", t.TempDir()} }},
		{"s3", func(t *testing.T) []string { return s3Args(s3test.Start(t), uniquePrefix(t)) }},
		{"azure", func(t *testing.T) []string { return azureArgs(azuretest.Start(t), uniquePrefix(t)) }},
		{"gcs", func(t *testing.T) []string { return gcsArgs(gcstest.Start(t), uniquePrefix(t)) }},
	}
}

func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("it-%d-%s", time.Now().UnixNano(), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
}

// s3Args are the `stratus serve` flags for MinIO under prefix.
func s3Args(srv *s3test.Server, prefix string) []string {
	return s3ArgsVia(srv, prefix, srv.Config(prefix).Endpoint)
}

// s3ArgsVia is s3Args with the S3 API reached at endpoint (a proxy in front
// of MinIO) instead of MinIO's own address.
func s3ArgsVia(srv *s3test.Server, prefix, endpoint string) []string {
	c := srv.Config(prefix)
	return []string{
		"--set", "storage.driver=s3",
		"--set", "storage.s3.bucket=" + c.Bucket,
		"--set", "storage.s3.region=" + c.Region,
		"--set", "storage.s3.root_directory=" + c.RootDirectory,
		"--set", "storage.s3.endpoint=" + endpoint,
		"--set", "storage.s3.force_path_style=true",
		"--set", "storage.s3.access_key=" + c.AccessKey,
		"--set", "storage.s3.secret_key=" + c.SecretKey,
	}
}

// server is one running `stratus serve` process.
type server struct {
	Addr string // host:port on 127.0.0.1
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// URL is the base URL of the server.
func (s *server) URL() string { return "http://" + s.Addr }

// Log returns what the process has logged so far.
func (s *server) Log() string { return s.log.String() }

var listenRE = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

// startServer runs `stratus serve` on a free loopback port with the given
// extra arguments and environment, waits until /readyz answers, and stops
// it at the end of the test.
func startServer(t testing.TB, args []string, env ...string) *server {
	t.Helper()
	return startBinary(t, stratusBin, args, env...)
}

// startBinary is startServer with another build of stratus.
func startBinary(t testing.TB, bin string, args []string, env ...string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The metrics listener on a kernel-chosen port: several replicas on one
	// machine would otherwise fight over the default :9090.
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--set", "metrics.addr=127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	logs := &syncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = logs
	cmd.Stderr = io.MultiWriter(logs, pw)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stratus: %v", err)
	}
	s := &server{cmd: cmd, log: logs, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
				addrc <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case s.Addr = <-addrc:
	case <-s.done:
		t.Fatalf("stratus exited before listening:\n%s", logs)
	case <-ctx.Done():
		s.kill()
		t.Fatalf("stratus did not start in time:\n%s", logs)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("stratus %s log:\n%s", s.Addr, tail(s.Log(), 60))
		}
	})
	for {
		resp, err := http.Get(s.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stratus at %s never became ready:\n%s", s.Addr, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for a graceful exit, killing after 15 s.
func (s *server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.kill()
	}
}

// kill ends the process at once, as a crashed replica would.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// syncBuffer collects process output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tool returns the path of an external client the test command installs,
// failing with the install command when it is missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: run `bash integration/test.sh` (it installs %s into ~/.cache/stratus-tools/bin) or add that folder to PATH", name, name)
	}
	return p
}

// run executes a client command with a deadline and returns its combined output.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	return execTool(t, "", env, nil, name, args...)
}

// runIn runs a client command in a working directory (oras names files
// relative to it).
func runIn(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	return execTool(t, dir, nil, nil, name, args...)
}

// runStdin runs a client command reading its input from stdin.
func runStdin(t testing.TB, env []string, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	return execTool(t, "", env, stdin, name, args...)
}

func execTool(t testing.TB, dir string, env []string, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
