//go:build !linux

package gcstest

import "syscall"

// childProcAttr: only Linux can tie the child's life to ours; elsewhere
// Main's StopShared is the only cleanup.
func childProcAttr() *syscall.SysProcAttr { return nil }
