package lockingtest

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/internal/launch"
)

func TestRedisServerLifecycle(t *testing.T) {
	for name, opts := range map[string][]RedisOption{
		"unix socket": nil,
		"tcp":         {RedisTCP()},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := StartRedisServer(opts...)
			if err != nil {
				t.Fatal(err)
			}
			addr := r.Addr()
			if err := r.ping(); err != nil {
				t.Fatalf("PING after start: %v", err)
			}
			if err := r.Start(); err == nil {
				t.Error("Start of a running server succeeded")
			}
			if err := r.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := r.ping(); err == nil {
				t.Error("PING answered after Stop")
			}
			if err := r.Stop(); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if err := r.Restart(); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			if r.Addr() != addr {
				t.Errorf("address moved from %s to %s", addr, r.Addr())
			}
			if err := r.ping(); err != nil {
				t.Fatalf("PING after restart: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(r.dir); !os.IsNotExist(err) {
				t.Errorf("Close left %s behind: %v", r.dir, err)
			}
		})
	}
}

func TestMissingRedisServerNamesTheInstallCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv(launch.ToolsDirEnv, "")
	_, err := StartRedisServer()
	var missing *launch.MissingError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), redisInstall) {
		t.Errorf("err = %v, want one naming %q", err, redisInstall)
	}
}
