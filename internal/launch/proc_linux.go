package launch

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in a process group of its own (so Stop
// reaches whatever it forks, and a terminal's ^C reaches only the test
// binary) and has the kernel SIGKILL it when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the process group led by p.
func signalGroup(p *os.Process, sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return p.Signal(sig)
	}
	if err := syscall.Kill(-p.Pid, s); err != nil {
		return err
	}
	return nil
}

func pause(p *os.Process) error  { return signalGroup(p, syscall.SIGSTOP) }
func resume(p *os.Process) error { return signalGroup(p, syscall.SIGCONT) }
