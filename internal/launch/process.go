package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// Defaults for the durations in Spec.
const (
	DefaultReadyTimeout = 60 * time.Second
	DefaultStopGrace    = 5 * time.Second
)

// errorLogLines is how many lines of a child's log an error carries.
const errorLogLines = 50

// pollInterval is how often a failing Check is tried again.
const pollInterval = 25 * time.Millisecond

// ErrExited is wrapped by Start and WaitReady when the child exits before
// it is ready.
var ErrExited = errors.New("exited")

// ErrNotReady is wrapped by Start and WaitReady when a Check has not
// passed within the timeout.
var ErrNotReady = errors.New("not ready")

// Spec describes a child process for Start.
type Spec struct {
	// Name is used in messages; the base name of Path when empty.
	Name string
	// Path is the executable (see Find); Args its arguments.
	Path string
	Args []string
	// Env is added to the test binary's environment (later entries win).
	Env []string
	// Dir is the working directory; the test binary's when empty.
	Dir string
	// Log receives the child's stdout and stderr. Start makes a new one
	// (DefaultLogLimit) when nil; pass one to keep a server's output
	// across restarts.
	Log *Log
	// Ready are tried in order, each until it passes; Start returns once
	// all have passed. None: Start returns once the process has started.
	Ready []Check
	// ReadyTimeout bounds the wait for Ready (DefaultReadyTimeout if 0).
	ReadyTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL
	// (DefaultStopGrace if 0).
	StopGrace time.Duration
}

// Process is a running (or exited) child started by Start.
type Process struct {
	name  string
	cmd   *exec.Cmd
	log   *Log
	lines *lineWriter
	grace time.Duration
	done  chan struct{}
	err   error // how it exited; set before done is closed
}

// Start starts the child described by spec in its own process group (on
// Linux also with SIGKILL as its parent-death signal, so a test binary that
// panics or times out leaves nothing running) and waits until spec.Ready
// pass. ctx bounds that wait only: the process outlives ctx until Stop or
// Kill. When the child exits or is not ready in time, Start stops it and
// returns an error that wraps ErrExited or ErrNotReady and ends with the
// tail of its log.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.Path == "" {
		return nil, errors.New("launch: Spec.Path is empty")
	}
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	log := spec.Log
	if log == nil {
		log = NewLog(DefaultLogLimit)
	}
	p := &Process{name: name, log: log, grace: spec.StopGrace, done: make(chan struct{})}
	if p.grace <= 0 {
		p.grace = DefaultStopGrace
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	if len(spec.Env) > 0 {
		cmd.Env = append(os.Environ(), spec.Env...)
	}
	cmd.Dir = spec.Dir
	p.lines = newLineWriter(log, watched(spec.Ready))
	// One writer for both streams: exec then uses one pipe, so lines of
	// stdout and stderr do not tear each other.
	cmd.Stdout, cmd.Stderr = p.lines, p.lines
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps the output pipe open must not hang Wait.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.WaitReady(ctx, spec.ReadyTimeout, spec.Ready...); err != nil {
		if stopErr := p.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return p, nil
}

// WaitReady tries each check in order until it passes, for at most
// timeout (DefaultReadyTimeout if 0) in all. It fails at once, wrapping
// ErrExited, if the process exits first; on timeout or when ctx ends it
// wraps ErrNotReady and ctx's error. Either error ends with the log tail.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, checks ...Check) error {
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, c := range checks {
		var last error // the last failure that was not the deadline's
		for {
			err := c.Ready(ctx, p)
			if err == nil {
				break
			}
			if last == nil || ctx.Err() == nil {
				last = err
			}
			select {
			case <-p.done:
				return fmt.Errorf("%s %w during startup (%v) while waiting for %s; log:\n%s",
					p.name, ErrExited, p.err, c, p.log.Tail(errorLogLines))
			case <-ctx.Done():
				return fmt.Errorf("%s %w within %s: %s: %v (%w); log:\n%s",
					p.name, ErrNotReady, timeout, c, last, ctx.Err(), p.log.Tail(errorLogLines))
			case <-time.After(pollInterval):
			}
		}
	}
	return nil
}

// Stop ends the process: SIGCONT (a stopped process cannot act on a
// signal), SIGTERM to its process group, then SIGKILL after the grace
// period; it returns once the process has been waited for. Stopping an
// exited process does nothing; Stop may be called more than once and from
// several goroutines.
func (p *Process) Stop() error {
	if p.Exited() {
		return nil
	}
	_ = p.Resume() // best effort: it fails only where pausing cannot happen
	if err := p.Signal(syscall.SIGTERM); err != nil && !p.Exited() {
		if kerr := p.Kill(); kerr != nil {
			return errors.Join(fmt.Errorf("stopping %s: %w", p.name, err), kerr)
		}
		return nil
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(p.grace):
		return p.Kill()
	}
}

// Kill sends SIGKILL to the process group at once, as a crash would, and
// waits for the process.
func (p *Process) Kill() error {
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGKILL); err != nil && !p.Exited() {
		if kerr := p.cmd.Process.Kill(); kerr != nil && !p.Exited() {
			return fmt.Errorf("killing %s: %w", p.name, errors.Join(err, kerr))
		}
	}
	<-p.done
	return nil
}

// Signal sends sig to the process's group (to the process alone where
// there are no process groups).
func (p *Process) Signal(sig os.Signal) error { return signalGroup(p.cmd.Process, sig) }

// Pause freezes the process group (SIGSTOP): connections stay open and
// nothing is answered, as with an overloaded or partitioned server. Only
// on Linux.
func (p *Process) Pause() error { return pause(p.cmd.Process) }

// Resume continues a paused process group.
func (p *Process) Resume() error { return resume(p.cmd.Process) }

// Done is closed once the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether Done is closed.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process exited (as exec.Cmd.Wait reports it); nil while
// it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// ExitCode is the process's exit code once it has exited (-1 if a signal
// ended it), and -1 while it runs.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Name is the Spec's Name.
func (p *Process) Name() string { return p.name }

// Pid is the process id (also its process group id on Unix).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Log returns the kept output (see Log.String).
func (p *Process) Log() string { return p.log.String() }

// Tail returns the last n lines of the kept output.
func (p *Process) Tail(n int) string { return p.log.Tail(n) }

// Match returns the submatches of re (as regexp.FindStringSubmatch) in the
// first output line it matched, or nil. re is watched from the first byte
// when a Line check of the Spec uses it; otherwise only the kept log is
// searched.
func (p *Process) Match(re *regexp.Regexp) []string {
	if m, ok := p.lines.match(re); ok {
		return m
	}
	return firstLineMatch(p.log.String(), re)
}
