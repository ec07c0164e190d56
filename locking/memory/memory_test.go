package memory_test

import (
	"testing"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/locking/memory"
)

func TestStore(t *testing.T) {
	lockingtest.Run(t, func(t *testing.T) locking.Store {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
