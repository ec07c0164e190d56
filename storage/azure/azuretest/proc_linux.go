package azuretest

import "syscall"

// childProcAttr kills Azurite with the test binary, so a test that times
// out or panics leaves no server behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
