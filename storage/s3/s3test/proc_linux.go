package s3test

import "syscall"

// childProcAttr kills MinIO with the test binary, so a test that times out
// or panics leaves no server behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
