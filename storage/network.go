package storage

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// IsNetworkError reports failures to reach a store or to get a whole
// answer from it: refused or reset connections, timeouts (a context
// deadline among them), truncated bodies. Drivers mark them transient.
func IsNetworkError(err error) bool {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true
	}
	var timeout interface{ Timeout() bool }
	return errors.As(err, &timeout) && timeout.Timeout()
}
