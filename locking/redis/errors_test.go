package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking"
)

// replyError stands for an error reply from the server.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestMapErr(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	live := context.Background()
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		want    []error // errors.Is must hold for each
		notWant []error
	}{
		{"nil", live, nil, nil, nil},
		{"nil reply", live, goredis.Nil, []error{locking.ErrNotFound}, []error{locking.ErrUnavailable}},
		{"dial", live, dialErr, []error{locking.ErrUnavailable, dialErr}, nil},
		{"eof", live, io.EOF, []error{locking.ErrUnavailable, io.EOF}, nil},
		{"closed client", live, goredis.ErrClosed, []error{locking.ErrUnavailable}, nil},
		{"loading", live, replyError("LOADING Redis is loading the dataset in memory"), []error{locking.ErrUnavailable}, nil},
		{"readonly replica", live, replyError("READONLY You can't write against a read only replica."), []error{locking.ErrUnavailable}, nil},
		{"wrong password", live, replyError("WRONGPASS invalid username-password pair"), nil, []error{locking.ErrUnavailable}},
		{"script error", live, replyError("ERR Error running script"), nil, []error{locking.ErrUnavailable}},
		{"cancelled as i/o error", cancelled, fmt.Errorf("read: %w", io.ErrClosedPipe), []error{context.Canceled}, []error{locking.ErrUnavailable}},
		{"cancelled", live, context.Canceled, []error{context.Canceled}, []error{locking.ErrUnavailable}},
		{"deadline as i/o timeout", expired, errors.New("i/o timeout"), []error{locking.ErrUnavailable, context.DeadlineExceeded}, nil},
		{"deadline", expired, context.DeadlineExceeded, []error{locking.ErrUnavailable, context.DeadlineExceeded}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapErr(tt.ctx, "op", tt.err)
			if (got == nil) != (tt.err == nil) {
				t.Fatalf("mapErr(%v) = %v", tt.err, got)
			}
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("mapErr(%v) = %v, want it to be %v", tt.err, got, w)
				}
			}
			for _, w := range tt.notWant {
				if errors.Is(got, w) {
					t.Errorf("mapErr(%v) = %v, must not be %v", tt.err, got, w)
				}
			}
		})
	}
}
