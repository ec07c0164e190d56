package memory_test

import (
	"testing"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
)

func TestActivity(t *testing.T) {
	lockingtest.RunActivity(t, func(t *testing.T) lockingtest.ActivityBackend {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		// One process is one client; a closed store is as dead as it gets.
		return lockingtest.ActivityBackend{A: s, B: s, Kill: s.Close}
	})
}
