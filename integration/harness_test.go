package integration

import (
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
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
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
	proc *launch.Process
	done <-chan struct{} // closed when the process has exited
}

// URL is the base URL of the server.
func (s *server) URL() string { return "http://" + s.Addr }

// Log returns what the process has logged so far (the last MiB).
func (s *server) Log() string { return s.proc.Log() }

// serverLogLimit bounds what a server's log keeps: enough for the final
// metrics line and any failure, not a whole stress test's access log.
const serverLogLimit = 1 << 20

var listenRE = regexp.MustCompile(`stratus listening.*\baddr=(127\.0\.0\.1:\d+)`)

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
	return launchServer(t, bin, args, env, nil)
}

// launchServer starts bin as `stratus serve` with args and env, and waits
// for /readyz through client; a client with a TLS configuration probes
// over https.
func launchServer(t testing.TB, bin string, args, env []string, client *http.Client) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := launch.Start(ctx, launch.Spec{
		Name: "stratus",
		Path: bin,
		// The metrics listener on a kernel-chosen port: several replicas on
		// one machine would otherwise fight over the default :9090.
		Args:         append([]string{"serve", "--addr", "127.0.0.1:0", "--set", "metrics.addr=127.0.0.1:0"}, args...),
		Env:          env,
		Log:          launch.NewLog(serverLogLimit),
		Ready:        []launch.Check{launch.Line(listenRE)},
		ReadyTimeout: 60 * time.Second,
		StopGrace:    15 * time.Second,
	})
	if err != nil {
		t.Fatalf("start stratus: %v", err)
	}
	s := &server{Addr: p.Match(listenRE)[1], proc: p, done: p.Done()}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("stratus %s log:\n%s", s.Addr, p.Tail(80))
		}
	})
	readyz := s.URL() + "/readyz"
	if tr, ok := clientTransport(client); ok && tr.TLSClientConfig != nil {
		readyz = "https://" + s.Addr + "/readyz"
	}
	if err := p.WaitReady(ctx, 60*time.Second, launch.HTTPGet(client, readyz, http.StatusOK)); err != nil {
		t.Fatalf("stratus at %s never became ready: %v", s.Addr, err)
	}
	return s
}

func clientTransport(c *http.Client) (*http.Transport, bool) {
	if c == nil {
		return nil, false
	}
	tr, ok := c.Transport.(*http.Transport)
	return tr, ok
}

// Stop sends SIGTERM and waits for a graceful exit, killing after 15 s.
func (s *server) Stop() { s.proc.Stop() }

// kill ends the process at once, as a crashed replica would.
func (s *server) kill() { s.proc.Kill() }

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
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
