package integration

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestTokenCLIs logs the command-line clients (crane, oras, regctl,
// podman, skopeo) in against the built-in token issuer, then pushes and
// pulls through the Bearer challenge. Each keeps its credentials in its own
// file in the test's directory; only team-a/** is writable by alice, and
// nothing is readable without login.
func TestTokenCLIs(t *testing.T) {
	srv := startBuiltinTokenServer(t)
	host := srv.Addr
	img, err := random.Image(128*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "team-a/seed:v1"), img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})); err != nil {
		t.Fatal(err)
	}
	seed, _ := img.Digest()
	password := strings.NewReader
	work := t.TempDir()

	t.Run("crane", func(t *testing.T) {
		env := []string{"DOCKER_CONFIG=" + t.TempDir()}
		if out, err := runErrStdin(t, env, nil, "crane", "digest", "--insecure", host+"/team-a/seed:v1"); err == nil {
			t.Fatalf("crane read without login: %s", out)
		}
		runStdin(t, env, password("alice-pw"), "crane", "auth", "login", host, "-u", "alice", "--password-stdin")
		run(t, env, "crane", "copy", "--insecure", host+"/team-a/seed:v1", host+"/team-a/crane:v1")
		if d := strings.TrimSpace(run(t, env, "crane", "digest", "--insecure", host+"/team-a/crane:v1")); d != seed.String() {
			t.Fatalf("crane digest %s, want %s", d, seed)
		}
		if cat := run(t, env, "crane", "catalog", "--insecure", host); !strings.Contains(cat, "team-a/crane") {
			t.Fatalf("crane catalog: %q", cat)
		}
	})

	t.Run("oras", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "auth.json")
		if err := os.WriteFile(filepath.Join(work, "a.txt"), []byte("oras via token\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		execTool(t, work, nil, password("alice-pw"), "oras", "login", host, "-u", "alice", "--password-stdin", "--plain-http", "--registry-config", cfg)
		runIn(t, work, "oras", "push", host+"/team-a/oras:v1", "a.txt:text/plain", "--plain-http", "--registry-config", cfg)
		out := filepath.Join(work, "oras-out")
		runIn(t, work, "oras", "pull", host+"/team-a/oras:v1", "-o", out, "--plain-http", "--registry-config", cfg)
		if b, err := os.ReadFile(filepath.Join(out, "a.txt")); err != nil || string(b) != "oras via token\n" {
			t.Fatalf("oras pull: %q %v", b, err)
		}
	})

	t.Run("regctl", func(t *testing.T) {
		env := []string{"HOME=" + t.TempDir()}
		// set pings the registry, which answers 401 before the login.
		run(t, env, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", host)
		runStdin(t, env, password("alice-pw"), "regctl", "registry", "login", host, "-u", "alice", "--pass-stdin")
		run(t, env, "regctl", "image", "copy", host+"/team-a/seed:v1", host+"/team-a/regctl:v1")
		if d := strings.TrimSpace(run(t, env, "regctl", "image", "digest", host+"/team-a/regctl:v1")); d != seed.String() {
			t.Fatalf("regctl digest %s, want %s", d, seed)
		}
	})

	t.Run("podman", func(t *testing.T) {
		p := newPodman(t, "--tls-verify=false")
		p.login(password("alice-pw"), host, "alice")
		p.copyTag(host+"/team-a/seed:v1", host+"/team-a/podman:v1")
		if _, err := remote.Head(ref(t, srv, "team-a/podman:v1"), remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})); err != nil {
			t.Fatalf("the image podman pushed: %v", err)
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		authfile := filepath.Join(t.TempDir(), "auth.json")
		runStdin(t, nil, password("alice-pw"), "skopeo", "login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "--password-stdin", host)
		run(t, nil, "skopeo", "copy", "--authfile", authfile, "--src-tls-verify=false", "--dest-tls-verify=false",
			"docker://"+host+"/team-a/seed:v1", "docker://"+host+"/team-a/skopeo:v1")
		if out := run(t, nil, "skopeo", "inspect", "--authfile", authfile, "--tls-verify=false", "docker://"+host+"/team-a/skopeo:v1"); !strings.Contains(out, seed.String()) {
			t.Fatalf("skopeo inspect: %s", out)
		}
		bad := filepath.Join(t.TempDir(), "bad.json")
		if out, err := runErrStdin(t, nil, password("wrong"), "skopeo", "login", "--tls-verify=false", "--authfile", bad, "-u", "alice", "--password-stdin", host); err == nil {
			t.Fatalf("skopeo login with a wrong password: %s", out)
		}
	})
}

// runErrStdin runs a client command that may fail and returns its output
// and error, for the refusals.
func runErrStdin(t *testing.T, env []string, stdin io.Reader, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}
