package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestIsNetworkError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"reset, wrapped", fmt.Errorf("reading: %w", syscall.ECONNRESET), true},
		{"broken pipe", syscall.EPIPE, true},
		{"truncated body", io.ErrUnexpectedEOF, true},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"plain EOF", io.EOF, false},
		{"other", errors.New("bad request"), false},
	}
	for _, tt := range tests {
		if got := IsNetworkError(tt.err); got != tt.want {
			t.Errorf("IsNetworkError(%s: %v) = %v; want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
