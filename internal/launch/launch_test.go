package launch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	write := func(t *testing.T, dir, name string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		sub   string
		setup func(t *testing.T, path, tools, home string) string // returns the path wanted, "" for missing
	}{
		{"in PATH first", "bin", func(t *testing.T, path, tools, home string) string {
			write(t, filepath.Join(tools, "bin"), "tool", 0o755)
			return write(t, path, "tool", 0o755)
		}},
		{"in $STRATUS_TOOLS_DIR/bin before the cache", "bin", func(t *testing.T, path, tools, home string) string {
			write(t, filepath.Join(home, ".cache", "stratus-tools", "bin"), "tool", 0o755)
			return write(t, filepath.Join(tools, "bin"), "tool", 0o755)
		}},
		{"in ~/.cache/stratus-tools/bin", "bin", func(t *testing.T, path, tools, home string) string {
			return write(t, filepath.Join(home, ".cache", "stratus-tools", "bin"), "tool", 0o755)
		}},
		{"under another subdirectory", "npm/node_modules/.bin", func(t *testing.T, path, tools, home string) string {
			write(t, filepath.Join(tools, "bin"), "tool", 0o755)
			return write(t, filepath.Join(home, ".cache", "stratus-tools", "npm", "node_modules", ".bin"), "tool", 0o755)
		}},
		{"not executable", "bin", func(t *testing.T, path, tools, home string) string {
			write(t, filepath.Join(tools, "bin"), "tool", 0o644)
			return ""
		}},
		{"a directory", "bin", func(t *testing.T, path, tools, home string) string {
			if err := os.MkdirAll(filepath.Join(tools, "bin", "tool"), 0o755); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
		{"missing", "bin", func(t *testing.T, path, tools, home string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			path, tools, home := filepath.Join(root, "path"), filepath.Join(root, "tools"), filepath.Join(root, "home")
			t.Setenv("PATH", path)
			t.Setenv(ToolsDirEnv, tools)
			t.Setenv("HOME", home)
			want := tc.setup(t, path, tools, home)
			got, err := FindUnder(tc.sub, "tool", "get-tool --now")
			if want != "" {
				if err != nil || got != want {
					t.Errorf("FindUnder = %q, %v; want %q", got, err, want)
				}
				return
			}
			var missing *MissingError
			if !errors.As(err, &missing) || missing.Name != "tool" {
				t.Fatalf("err = %v (%q), want a *MissingError", err, got)
			}
			for _, s := range []string{"tool not found", "$" + ToolsDirEnv + "/" + tc.sub, "~/.cache/stratus-tools/" + tc.sub, "install it with:\n  get-tool --now"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
		})
	}
}

// fakeTB records how Require ended a test, without ending this one.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }
func (f *fakeTB) Skip(args ...any)  { f.skip = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	missing := &MissingError{Name: "minio", Searched: []string{"PATH"}, Install: "go install minio"}
	for _, tc := range []struct {
		name            string
		ci              string
		err             error
		wantFatal, skip bool
	}{
		{"found", "true", nil, false, false},
		{"missing in CI fails", "true", missing, true, false},
		{"missing elsewhere skips", "", missing, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			tb := &fakeTB{}
			Require(tb, tc.err)
			if (tb.fatal != "") != tc.wantFatal || (tb.skip != "") != tc.skip {
				t.Fatalf("fatal %q, skip %q; want fatal %v, skip %v", tb.fatal, tb.skip, tc.wantFatal, tc.skip)
			}
			if msg := tb.fatal + tb.skip; tc.err != nil && !strings.Contains(msg, "go install minio") {
				t.Errorf("message %q lacks the install command", msg)
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", LocalAddr(port))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
}

func TestLog(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"under the limit", 10, []string{"abc", "def"}, "abcdef"},
		{"at the limit", 4, []string{"ab", "cd"}, "abcd"},
		{"over the limit keeps the tail", 4, []string{"abc", "def"}, "[... 2 bytes dropped ...]\ncdef"},
		{"one write past twice the limit", 3, []string{"a", "bcdefghij"}, "[... 7 bytes dropped ...]\nhij"},
		{"many small writes", 3, strings.Split("abcdefghij", ""), "[... 7 bytes dropped ...]\nhij"},
		{"default limit", 0, []string{strings.Repeat("x", DefaultLogLimit+5)},
			"[... 5 bytes dropped ...]\n" + strings.Repeat("x", DefaultLogLimit)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLog(tc.limit)
			for _, w := range tc.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := l.String(); got != tc.want {
				t.Errorf("String = %.80q, want %.80q", got, tc.want)
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	l := NewLog(0)
	fmt.Fprint(l, "one\ntwo\nthree\n")
	for n, want := range map[int]string{1: "three", 2: "two\nthree", 5: "one\ntwo\nthree", 0: "one\ntwo\nthree"} {
		if got := l.Tail(n); got != want {
			t.Errorf("Tail(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	re := regexp.MustCompile(`addr=(\S+)`)
	for _, tc := range []struct {
		name   string
		writes []string
		want   []string // nil: no match
	}{
		{"one write", []string{"x\nlistening addr=a:1\n"}, []string{"addr=a:1", "a:1"}},
		{"split across writes", []string{"listening ad", "dr=b:2", "\nmore\n"}, []string{"addr=b:2", "b:2"}},
		{"first match wins", []string{"addr=c:3\naddr=d:4\n"}, []string{"addr=c:3", "c:3"}},
		{"CRLF", []string{"addr=e:5\r\n"}, []string{"addr=e:5", "e:5"}},
		{"no newline yet", []string{"addr=f:6"}, nil},
		{"over-long line is cut", []string{strings.Repeat("y", maxLine), "addr=g:7\n"}, nil},
		{"after an over-long line", []string{strings.Repeat("y", maxLine+10) + "\naddr=h:8\n"}, []string{"addr=h:8", "h:8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := NewLog(16) // smaller than the output: matching must not depend on it
			w := newLineWriter(log, []*regexp.Regexp{re})
			for _, s := range tc.writes {
				if _, err := w.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			got, watched := w.match(re)
			if !watched {
				t.Fatal("re not watched")
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("match = %q, want %q", got, tc.want)
			}
		})
	}
}

// closer counts Close calls of a fake shared server.
type closer struct {
	closed int
	err    error
}

func (c *closer) Close() error { c.closed++; return c.err }

func TestShared(t *testing.T) {
	s := Shared[*closer]{Name: "fake"}
	starts := 0
	start := func() (*closer, error) { starts++; return &closer{}, nil }
	a, err := s.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Get(start); b != a || starts != 1 {
		t.Fatalf("second Get started again (%d starts) or returned another server", starts)
	}
	if err := s.Close(); err != nil || a.closed != 1 {
		t.Fatalf("Close = %v, closed %d times", err, a.closed)
	}
	if err := s.Close(); err != nil || a.closed != 1 {
		t.Fatalf("second Close = %v, closed %d times", err, a.closed)
	}
	if c, _ := s.Get(start); c == a || starts != 2 {
		t.Fatal("Get after Close did not start a new server")
	}
	s.srv.err = errors.New("stuck")
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "stopping fake: stuck") {
		t.Errorf("Close error = %v", err)
	}
}

func TestSharedRemembersAFailedStart(t *testing.T) {
	s := Shared[*closer]{Name: "fake"}
	starts := 0
	start := func() (*closer, error) { starts++; return nil, errors.New("no port") }
	for range 2 {
		if _, err := s.Get(start); err == nil {
			t.Fatal("Get succeeded")
		}
	}
	if starts != 1 {
		t.Errorf("%d starts, want 1", starts)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after a failed start: %v", err)
	}
	tb := &fakeTB{}
	s.MustGet(tb, start)
	if want := "starting fake: no port"; tb.fatal != want {
		t.Errorf("MustGet failed the test with %q, want %q", tb.fatal, want)
	}
}

func TestInTempDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantDir bool // left behind
	}{
		{"success keeps the directory", nil, true},
		{"failure removes it", errors.New("no start"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dir string
			got, err := InTempDir("launch-test-", func(d string) (string, error) {
				dir = d
				if err := os.WriteFile(filepath.Join(d, "data"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return d, tc.err
			})
			t.Cleanup(func() { os.RemoveAll(dir) })
			if !errors.Is(err, tc.err) || (tc.err == nil) != (got == dir) {
				t.Fatalf("InTempDir = %q, %v", got, err)
			}
			if _, serr := os.Stat(dir); (serr == nil) != tc.wantDir {
				t.Errorf("directory left behind: %v, want %v", serr == nil, tc.wantDir)
			}
		})
	}
}

func TestSharedStart(t *testing.T) {
	missing := &MissingError{Name: "minio", Searched: []string{"PATH"}, Install: "go install minio"}
	for _, tc := range []struct {
		name       string
		findErr    error
		wantStarts int
		wantSkip   bool
	}{
		{"found: starts once from the binary", nil, 1, false},
		{"missing: skips without starting", missing, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", "")
			s := Shared[*closer]{Name: "fake"}
			starts := 0
			find := func() (string, error) { return "/bin/fake", tc.findErr }
			start := func(bin string) (*closer, error) {
				if bin != "/bin/fake" {
					t.Errorf("started from %q", bin)
				}
				starts++
				return &closer{}, nil
			}
			tb := &fakeTB{}
			s.Start(tb, find, start)
			s.Start(tb, find, start)
			if starts != tc.wantStarts || (tb.skip != "") != tc.wantSkip || tb.fatal != "" {
				t.Errorf("starts %d, skip %q, fatal %q", starts, tb.skip, tb.fatal)
			}
		})
	}
}
