//go:build unix

package registry

import (
	"syscall"
	"time"
)

// processCPU is the user + system CPU time this process has used, for
// benchmarks that report CPU per operation; ok is false where the platform
// cannot tell.
func processCPU() (cpu time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
