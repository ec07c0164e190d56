// Package deploytest builds the stratus binary and runs its `config check`
// for the tests of the deployment files (Dockerfile, k8s/, terraform/,
// deploy/), which exercise the real configuration loader rather than a
// copy of its rules.
package deploytest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ModuleRoot is the repository root: the directory of go.mod above this
// file.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("deploytest: cannot locate the source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Build compiles ./cmd/stratus into a temporary directory with the given
// extra environment (e.g. CGO_ENABLED=0) and go build flags, and returns
// the binary's path.
func Build(t testing.TB, env []string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stratus")
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", bin, "./cmd/stratus")
	cmd := exec.Command("go", args...)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// ConfigCheck writes config to a file and runs `stratus config check` on
// it with exactly env as the STRATUS_* environment. It returns the
// command's output and whether the configuration was accepted.
func ConfigCheck(t testing.TB, bin string, config []byte, env []string) (string, bool) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "stratus.yaml")
	if err := os.WriteFile(file, config, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "config", "check", file)
	// Nothing from the test's own environment: a stray STRATUS_* variable
	// would change (or break) the result.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exited *exec.ExitError
	if err != nil && !errors.As(err, &exited) {
		t.Fatalf("run %s config check: %v", bin, err)
	}
	return out.String(), err == nil
}
