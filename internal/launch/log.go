package launch

import (
	"fmt"
	"strings"
	"sync"
)

// DefaultLogLimit is how much of a child's output a Log keeps by default:
// enough for a failure message, bounded for servers that log for a whole
// benchmark.
const DefaultLogLimit = 64 << 10

// Log keeps the last bytes a process wrote, safe to read while it writes.
// The zero value keeps DefaultLogLimit bytes.
type Log struct {
	limit int // bytes kept; 0 means DefaultLogLimit

	mu      sync.Mutex
	buf     []byte
	dropped int64 // bytes discarded from the front
}

// NewLog returns a Log that keeps the last limit bytes (DefaultLogLimit
// when limit <= 0).
func NewLog(limit int) *Log { return &Log{limit: limit} }

func (l *Log) max() int {
	if l.limit <= 0 {
		return DefaultLogLimit
	}
	return l.limit
}

// Write appends p, dropping the oldest bytes beyond the limit. It never
// fails, so a chatty child is never blocked or killed by its log.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.max()
	if len(p) >= limit {
		l.dropped += int64(len(l.buf) + len(p) - limit)
		l.buf = append(l.buf[:0], p[len(p)-limit:]...)
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	// Trim only past twice the limit, so that the copy is amortised.
	if len(l.buf) > 2*limit {
		cut := len(l.buf) - limit
		l.dropped += int64(cut)
		l.buf = append(l.buf[:0], l.buf[cut:]...)
	}
	return len(p), nil
}

// String returns what is kept, at most the limit, preceded by a note of
// how much was dropped, if anything was.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, dropped := l.buf, l.dropped
	if over := len(b) - l.max(); over > 0 {
		b, dropped = b[over:], dropped+int64(over)
	}
	if dropped == 0 {
		return string(b)
	}
	return fmt.Sprintf("[... %d bytes dropped ...]\n%s", dropped, b)
}

// Tail returns the last n lines of what is kept (all of it when n <= 0).
func (l *Log) Tail(n int) string { return tailLines(l.String(), n) }

func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if n <= 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
