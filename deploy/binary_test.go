package deploy

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stratus-registry/stratus/deploy/deploytest"
	"github.com/stratus-registry/stratus/internal/launch"
)

// TestCIBinary builds stratus exactly as the Dockerfile does (its go build
// environment and flags, extracted from the file) and starts it: the image
// and CI ship the same binary, and that binary runs.
func TestCIBinary(t *testing.T) {
	const version = "v0.0.0-citest"
	bin := deploytest.BuildLikeDockerfile(t, version)

	// What the toolchain recorded is what was asked for.
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, want := range []string{"build\tCGO_ENABLED=0", "build\t-trimpath=true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("go version -m lacks %q:\n%s", want, out)
		}
	}

	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("stratus version = %q (%v), want it to name %s (-X main.version)", out, err, version)
	}

	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = launch.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	addr := launch.LocalAddr(ports[0])
	client := &http.Client{Timeout: 2 * time.Second}
	ctx := context.Background()
	p, err := launch.Start(ctx, launch.Spec{
		Path: bin,
		// The image's ENTRYPOINT and CMD: serve --root DIR.
		Args: []string{"serve", "--root", t.TempDir(), "--addr", addr, "--set", "metrics.addr=" + launch.LocalAddr(ports[1])},
		Env:  []string{"STRATUS_CONFIG="},
		Ready: []launch.Check{
			launch.HTTPGet(client, "http://"+addr+"/healthz", http.StatusOK),
			launch.HTTPGet(client, "http://"+addr+"/readyz", http.StatusOK),
			launch.HTTPGet(client, "http://"+addr+"/v2/", http.StatusOK),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
}

// TestLinuxHost: the host recipe's configuration is valid, and systemd
// waits for the drain before it kills a replica.
func TestLinuxHost(t *testing.T) {
	bin := deploytest.BuildLikeDockerfile(t, "test")
	data, err := os.ReadFile(filepath.Join("linux", "stratus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The unit sets the listeners per replica; check with replica 1's.
	env := []string{"STRATUS_HTTP_ADDR=127.0.0.1:5001", "STRATUS_METRICS_ADDR=127.0.0.1:9091"}
	if out, ok := deploytest.ConfigCheck(t, bin, data, env); !ok {
		t.Fatalf("stratus config check rejects linux/stratus.yaml:\n%s", out)
	}
	var cfg struct {
		HTTP struct {
			ShutdownDelay   time.Duration `yaml:"shutdown_delay"`
			ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	unit := systemdUnit(t, filepath.Join("linux", "stratus@.service"))
	stop, err := time.ParseDuration(unit["Service.TimeoutStopSec"] + "s")
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if drain := cfg.HTTP.ShutdownDelay + cfg.HTTP.ShutdownTimeout; drain == 0 || stop < drain {
		t.Errorf("TimeoutStopSec %s below shutdown_delay + shutdown_timeout = %s", stop, drain)
	}
	exec := unit["Service.ExecStart"]
	for _, want := range []string{"stratus serve", "--config /etc/stratus/stratus.yaml", "%i"} {
		if !strings.Contains(exec, want) {
			t.Errorf("ExecStart %q lacks %q", exec, want)
		}
	}
	if u := unit["Service.User"]; u == "" || u == "root" {
		t.Errorf("User=%q, want a system user", u)
	}
}

// systemdUnit reads a unit file into "Section.Key" -> value (the last
// assignment wins, as in systemd).
func systemdUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, ";"):
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			section = s[1 : len(s)-1]
		default:
			k, v, ok := strings.Cut(s, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not Key=Value in a section", path, line, s)
			}
			out[fmt.Sprintf("%s.%s", section, strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
