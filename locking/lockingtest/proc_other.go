//go:build !linux

package lockingtest

import (
	"errors"
	"os"
	"syscall"
)

// The fault-injection helpers are Linux-only; the suite itself runs anywhere.

func childProcAttr() *syscall.SysProcAttr { return nil }

func pauseProcess(*os.Process) error  { return errors.New("Pause is only supported on Linux") }
func resumeProcess(*os.Process) error { return nil }
