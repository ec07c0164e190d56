// Package azuretest starts a throwaway Azurite blob server on 127.0.0.1 for
// tests of the Azure driver and of anything built on it (integration).
//
// One server is shared by the whole test binary: Start launches it on
// first use, and TestMain stops it:
//
//	func TestMain(m *testing.M) { os.Exit(azuretest.Main(m)) }
//
// Tests isolate themselves with a root directory (Config(prefix)) or a
// container of their own (NewContainer). The account is Azurite's
// well-known development account: it is public, and it is never a default
// of the driver's configuration.
package azuretest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/stratus-registry/stratus/storage/azure"
)

// AzuriteVersion is the pinned release integration/test.sh installs.
const AzuriteVersion = "3.37.0"

// The well-known Azurite development account (public, documented by
// Microsoft; useless outside an emulator).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// installHint tells a developer how to get the binary.
const installHint = "azurite-blob not found in PATH, $STRATUS_TOOLS_DIR/azurite or ~/.cache/stratus-tools/azurite; install it with:\n" +
	"  npm install --prefix $HOME/.cache/stratus-tools/azurite azurite@" + AzuriteVersion + "\n" +
	"or run bash integration/test.sh"

// Server is a running Azurite blob service.
type Server struct {
	// ServiceURL is the account's blob endpoint,
	// http://127.0.0.1:<port>/devstoreaccount1.
	ServiceURL string
	// Container exists when Start returns.
	Container string

	// RootCAs trusts the server's certificate when it serves HTTPS
	// (LaunchOAuth); nil for plain HTTP.
	RootCAs *x509.CertPool
	// HostStyleURL (LaunchOAuth only) names the same endpoint as
	// https://devstoreaccount1.localhost:<port>/devstoreaccount1: the
	// account is also the first DNS label, which the SDK needs to sign
	// user-delegation SAS URLs. Dial resolves that name to 127.0.0.1.
	HostStyleURL string

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

// Start returns the test binary's Azurite, starting it on the first call.
// Without the azurite-blob binary it skips the test, or fails it when $CI
// is set (CI must not pass by skipping). Stop it with Main or StopShared.
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
		tb.Fatalf("starting azurite: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests, then stops the shared server if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "azuretest: stopping azurite:", err)
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

// FindBinary looks for azurite-blob in PATH, then in the npm prefixes
// $STRATUS_TOOLS_DIR/azurite and ~/.cache/stratus-tools/azurite.
func FindBinary() (string, error) {
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("STRATUS_TOOLS_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "azurite"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "stratus-tools", "azurite"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "node_modules", ".bin", "azurite-blob")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(installHint)
}

// Launch starts an Azurite of its own (not the shared one) from the binary
// at bin, waits until it answers and has a container. Close it when done.
func Launch(bin string) (*Server, error) { return launch(bin, false) }

// LaunchOAuth starts an Azurite of its own that serves HTTPS with a fresh
// self-signed certificate (trusted by RootCAs) and accepts bearer tokens
// (--oauth basic: issuer, audience and lifetime are checked, not the
// signature), for tests of the azidentity code paths.
func LaunchOAuth(bin string) (*Server, error) { return launch(bin, true) }

func launch(bin string, oauth bool) (*Server, error) {
	dir, err := os.MkdirTemp("", "azuretest-azurite-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{
		ServiceURL: "http://127.0.0.1:" + strconv.Itoa(port) + "/" + AccountName,
		Container:  "stratus-test",
		dir:        dir,
		exited:     make(chan struct{}),
	}
	args := []string{
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence", "--skipApiVersionCheck", "--loose",
		"--disableProductStyleUrl", "--disableTelemetry", "--silent",
	}
	if oauth {
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if s.RootCAs, err = writeCert(certFile, keyFile); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.ServiceURL = "https" + strings.TrimPrefix(s.ServiceURL, "http")
		s.HostStyleURL = "https://" + hostStyleName + ":" + strconv.Itoa(port) + "/" + AccountName
		args = append(args, "--cert", certFile, "--key", keyFile, "--oauth", "basic")
	}
	if f := os.Getenv("AZURITE_DEBUG_LOG"); f != "" {
		args = append(args, "--debug", f) // Azurite's own request log, for debugging
	}
	cmd := exec.Command(bin, args...)
	// Azurite refuses --location together with --inMemoryPersistence; its
	// workspace defaults to the working directory, the temp dir here.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
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
	if err := s.CreateContainer(context.Background(), s.Container); err != nil {
		s.Close()
		return nil, fmt.Errorf("creating container: %w; log:\n%s", err, s.Log())
	}
	return s, nil
}

// waitLive polls until Azurite answers HTTP at all (an unauthenticated
// request gets a 403, which is an answer).
func (s *Server) waitLive(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: s.transport()}
	deadline := time.Now().Add(limit)
	for {
		resp, err := client.Get(s.ServiceURL + "?comp=list")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("azurite exited during startup; log:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("azurite not answering within %s (%v); log:\n%s", limit, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client is a plain SDK service client for the server, for tests that set
// up or inspect the container behind the driver's back.
func (s *Server) Client() *service.Client {
	cred, err := service.NewSharedKeyCredential(AccountName, AccountKey)
	if err != nil {
		panic(err) // the well-known key is valid base64
	}
	c, err := service.NewClientWithSharedKeyCredential(s.ServiceURL, cred,
		&service.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: s.transport()}}})
	if err != nil {
		panic(err)
	}
	return c
}

// hostStyleName is the name HostStyleURL uses for 127.0.0.1.
const hostStyleName = AccountName + ".localhost"

// Dial connects to the server whatever host name the address carries, so
// that HostStyleURL works without DNS; it only ever reaches 127.0.0.1.
func (s *Server) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

// transport trusts the server's certificate, if it has one.
func (s *Server) transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if s.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return t
}

// CreateContainer creates a container; one that exists is fine.
func (s *Server) CreateContainer(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := s.Client().CreateContainer(ctx, name, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return err
	}
	return nil
}

// NewContainer creates a fresh container for one test and returns its name.
func (s *Server) NewContainer(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t-%d-%d", time.Now().UnixNano(), os.Getpid())
	if err := s.CreateContainer(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	return name
}

// Config is a driver configuration for the server's container under
// prefix (the root_directory; empty means the container root).
func (s *Server) Config(prefix string) azure.Config {
	return azure.Config{
		AccountName:    AccountName,
		AccountKey:     AccountKey,
		Container:      s.Container,
		RootDirectory:  prefix,
		ServiceURL:     s.ServiceURL,
		RequestTimeout: 30 * time.Second,
		MaxRetries:     2,
		RetryDelay:     50 * time.Millisecond,
		MaxRetryDelay:  time.Second,
	}
}

// ConnectionString is the development connection string for the server.
func (s *Server) ConnectionString() string {
	return strings.Join([]string{
		"DefaultEndpointsProtocol=http",
		"AccountName=" + AccountName,
		"AccountKey=" + AccountKey,
		"BlobEndpoint=" + s.ServiceURL,
	}, ";")
}

// Log returns what the server has printed so far.
func (s *Server) Log() string { return s.log.String() }

// Close stops the server (SIGTERM, then SIGKILL after 5s) and removes its
// directory.
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
// could take it before Azurite binds it; Launch then fails loudly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
