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
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/stratus-registry/stratus/internal/launch"
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
const installHint = "npm install --prefix $HOME/.cache/stratus-tools/azurite azurite@" + AzuriteVersion + "\n" +
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

	dir  string
	proc *launch.Process
}

// The shared server of this test binary. Package state is the point here:
// every test in the binary must find the same server.
var shared = launch.Shared[*Server]{Name: "azurite"}

// Start returns the test binary's Azurite, starting it on the first call.
// Without the azurite-blob binary it skips the test, or fails it when $CI
// is set (CI must not pass by skipping). Stop it with Main or StopShared.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return shared.Start(tb, FindBinary, Launch)
}

// Main runs the tests, then stops the shared server if one was started.
func Main(m *testing.M) int { return launch.Main(m, &shared) }

// StopShared stops the shared server, if one was started.
func StopShared() error { return shared.Close() }

// FindBinary looks for azurite-blob in PATH, then in the npm prefixes
// $STRATUS_TOOLS_DIR/azurite and ~/.cache/stratus-tools/azurite.
func FindBinary() (string, error) {
	return launch.FindUnder(filepath.Join("azurite", "node_modules", ".bin"), "azurite-blob", installHint)
}

// Launch starts an Azurite of its own (not the shared one) from the binary
// at bin, waits until it answers and has a container. Close it when done.
func Launch(bin string) (*Server, error) { return launchAzurite(bin, false) }

// LaunchOAuth starts an Azurite of its own that serves HTTPS with a fresh
// self-signed certificate (trusted by RootCAs) and accepts bearer tokens
// (--oauth basic: issuer, audience and lifetime are checked, not the
// signature), for tests of the azidentity code paths.
func LaunchOAuth(bin string) (*Server, error) { return launchAzurite(bin, true) }

func launchAzurite(bin string, oauth bool) (*Server, error) {
	return launch.InTempDir("azuretest-azurite-", func(dir string) (*Server, error) {
		return launchIn(context.Background(), bin, dir, oauth)
	})
}

func launchIn(ctx context.Context, bin, dir string, oauth bool) (*Server, error) {
	port, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		ServiceURL: "http://" + launch.LocalAddr(port) + "/" + AccountName,
		Container:  "stratus-test",
		dir:        dir,
	}
	args := []string{
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence", "--skipApiVersionCheck", "--loose",
		"--disableProductStyleUrl", "--disableTelemetry", "--silent",
	}
	if oauth {
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if s.RootCAs, err = writeCert(certFile, keyFile); err != nil {
			return nil, err
		}
		s.ServiceURL = "https" + strings.TrimPrefix(s.ServiceURL, "http")
		s.HostStyleURL = "https://" + hostStyleName + ":" + strconv.Itoa(port) + "/" + AccountName
		args = append(args, "--cert", certFile, "--key", keyFile, "--oauth", "basic")
	}
	if f := os.Getenv("AZURITE_DEBUG_LOG"); f != "" {
		args = append(args, "--debug", f) // Azurite's own request log, for debugging
	}
	// Any answer means it is up: an unauthenticated request gets a 403.
	probe := &http.Client{Transport: s.transport()}
	s.proc, err = launch.Start(ctx, launch.Spec{
		Name: "azurite",
		Path: bin,
		Args: args,
		// Azurite refuses --location together with --inMemoryPersistence;
		// its workspace defaults to the working directory, the temp dir.
		Dir:          dir,
		Env:          []string{"HOME=" + dir},
		Ready:        []launch.Check{launch.HTTPGet(probe, s.ServiceURL+"?comp=list")},
		ReadyTimeout: 90 * time.Second, // Node.js starts slowly on a loaded 2-core machine
	})
	if err != nil {
		return nil, err
	}
	if err := s.CreateContainer(ctx, s.Container); err != nil {
		s.proc.Stop()
		return nil, fmt.Errorf("creating container: %w; log:\n%s", err, s.Log())
	}
	return s, nil
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
		MaxRetries:     new(2),
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
func (s *Server) Log() string { return s.proc.Log() }

// Close stops the server (SIGTERM, then SIGKILL after 5s) and removes its
// directory.
func (s *Server) Close() error {
	return errors.Join(s.proc.Stop(), os.RemoveAll(s.dir))
}
