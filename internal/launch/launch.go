// Package launch starts the external servers that tests and benchmarks run
// against (redis-server, MinIO, fake-gcs-server, Azurite, stratus itself,
// the reference registry) as child processes, in one way:
//
//   - Find locates a binary in PATH, $STRATUS_TOOLS_DIR/bin or
//     ~/.cache/stratus-tools/bin, and names the install command when it is
//     missing; Require turns that into a skip, or a failure under $CI.
//   - FreePort picks a free 127.0.0.1 port.
//   - Start runs the child in its own process group (and, on Linux, with a
//     parent-death signal, so it dies with the test binary), keeps the tail
//     of its output in a bounded Log, and waits until it is ready (Dial,
//     HTTPGet, Line or any Check) or reports the log when it is not.
//   - Process.Stop sends SIGTERM, then SIGKILL after a grace period, and
//     waits.
//   - Shared holds one server per test binary, stopped from TestMain (Main).
package launch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ToolsDirEnv names the environment variable that overrides where the test
// command (integration/test.sh) installs its tools.
const ToolsDirEnv = "STRATUS_TOOLS_DIR"

// MissingError says that a binary was not found, where it was looked for
// and how to install it.
type MissingError struct {
	Name     string   // the binary
	Searched []string // where it was looked for, as a person would write it
	Install  string   // the command (or instructions) that install it
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s not found in %s; install it with:\n  %s",
		e.Name, strings.Join(e.Searched, ", "), e.Install)
}

// Find looks for the executable name in PATH, then in $STRATUS_TOOLS_DIR/bin,
// then in ~/.cache/stratus-tools/bin (where integration/test.sh installs).
// The error is a *MissingError carrying installHint.
func Find(name, installHint string) (string, error) {
	return FindUnder("bin", name, installHint)
}

// FindUnder is Find with the tools directories' subdirectory sub instead of
// "bin" (for example "azurite/node_modules/.bin" for an npm prefix).
func FindUnder(sub, name, installHint string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv(ToolsDirEnv); d != "" {
		dirs = append(dirs, filepath.Join(d, sub))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "stratus-tools", sub))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &MissingError{
		Name: name,
		Searched: []string{"PATH",
			filepath.Join("$"+ToolsDirEnv, sub),
			filepath.Join("~/.cache/stratus-tools", sub)},
		Install: installHint,
	}
}

// Require ends the test when err (from Find) is not nil: it fails it when
// $CI is set, so that CI cannot pass by skipping, and skips it otherwise.
// The message is err's, which names the install command.
func Require(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if InCI() {
		tb.Fatal(err)
		return
	}
	tb.Skip(err)
}

// InCI reports whether $CI is set, as CI services do.
func InCI() bool { return os.Getenv("CI") != "" }

// FreePort asks the kernel for a 127.0.0.1 port nobody listens on. Another
// process could take it before the child binds it; on a test machine that
// is rare, and the child then fails to start (loudly) rather than talking
// to a stranger.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("finding a free port: listener has no TCP address")
	}
	return addr.Port, nil
}

// InTempDir makes a temporary directory (os.MkdirTemp("", pattern)) and
// calls f with it, for a server that keeps its data there; the directory
// is removed again if f fails. Removing it later is the caller's job.
func InTempDir[T any](pattern string, f func(dir string) (T, error)) (T, error) {
	var zero T
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return zero, fmt.Errorf("making a temporary directory: %w", err)
	}
	v, err := f(dir)
	if err != nil {
		return zero, errors.Join(err, os.RemoveAll(dir))
	}
	return v, nil
}

// LocalAddr is 127.0.0.1:port.
func LocalAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
