package main

import (
	"os"
	"testing"
	"time"
)

// TestProcessCPU: this process's CPU time from /proc grows while it
// spins, and a process that does not exist is an error, not zero.
func TestProcessCPU(t *testing.T) {
	m := startCPU([]int{os.Getpid()})
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	used, err := m.stop()
	if err != nil {
		t.Fatal(err)
	}
	if used <= 0 {
		t.Errorf("100 ms of spinning used %v of CPU", used)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
