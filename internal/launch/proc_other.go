//go:build !linux

package launch

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr: only Linux can tie the child's life to the test binary's;
// elsewhere Stop (from Main or t.Cleanup) is the only cleanup, and the
// child is signalled alone.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, sig os.Signal) error { return p.Signal(sig) }

func pause(*os.Process) error  { return errors.New("launch: Pause is only supported on Linux") }
func resume(*os.Process) error { return errors.New("launch: Resume is only supported on Linux") }
