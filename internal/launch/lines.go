package launch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Line passes once a line of the process's output matches re (a line
// counts once its newline is written); then
// Process.Match(re) returns the submatches (an address the child chose,
// say). Start watches re from the child's first byte, so the line is found
// however much the child logs after it.
func Line(re *regexp.Regexp) Check { return lineCheck{re} }

type lineCheck struct{ re *regexp.Regexp }

func (c lineCheck) String() string { return "a line matching " + c.re.String() }

func (c lineCheck) Ready(_ context.Context, p *Process) error {
	if p.Match(c.re) == nil {
		return errors.New("no such line yet")
	}
	return nil
}

// watched returns the regexps of the Line checks among checks.
func watched(checks []Check) []*regexp.Regexp {
	var res []*regexp.Regexp
	for _, c := range checks {
		if lc, ok := c.(lineCheck); ok {
			res = append(res, lc.re)
		}
	}
	return res
}

// maxLine bounds the partial line a lineWriter holds; a longer line is
// matched on its first maxLine bytes.
const maxLine = 64 << 10

// lineWriter copies the output into a Log and remembers, for each watched
// regexp, the first line that matched it.
type lineWriter struct {
	log io.Writer

	mu      sync.Mutex
	partial []byte
	watches []watch
	pending int // watches without a match yet
}

type watch struct {
	re    *regexp.Regexp
	match []string
}

func newLineWriter(log io.Writer, res []*regexp.Regexp) *lineWriter {
	w := &lineWriter{log: log, pending: len(res)}
	for _, re := range res {
		w.watches = append(w.watches, watch{re: re})
	}
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n, err := w.log.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	for rest := p; w.pending > 0 && len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w.hold(rest)
			break
		}
		w.hold(rest[:i])
		w.scan(string(w.partial))
		w.partial = w.partial[:0]
		rest = rest[i+1:]
	}
	return n, err
}

// hold adds b to the partial line, up to maxLine bytes.
func (w *lineWriter) hold(b []byte) {
	if room := maxLine - len(w.partial); len(b) > room {
		b = b[:room]
	}
	w.partial = append(w.partial, b...)
}

func (w *lineWriter) scan(line string) {
	line = strings.TrimSuffix(line, "\r")
	for i := range w.watches {
		if w.watches[i].match != nil {
			continue
		}
		if m := w.watches[i].re.FindStringSubmatch(line); m != nil {
			w.watches[i].match = m
			w.pending--
		}
	}
}

// match returns the first match of re, and whether re is watched at all.
func (w *lineWriter) match(re *regexp.Regexp) ([]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wt := range w.watches {
		if wt.re == re {
			return wt.match, true
		}
	}
	return nil, false
}

// firstLineMatch searches the lines of s for re.
func firstLineMatch(s string, re *regexp.Regexp) []string {
	for line := range strings.Lines(s) {
		if m := re.FindStringSubmatch(strings.TrimRight(line, "\r\n")); m != nil {
			return m
		}
	}
	return nil
}
