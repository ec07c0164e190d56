package lockingtest

import (
	"os"
	"syscall"
)

// childProcAttr kills the server with the test binary, so a test that times
// out or panics leaves no redis-server behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func pauseProcess(p *os.Process) error  { return p.Signal(syscall.SIGSTOP) }
func resumeProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
