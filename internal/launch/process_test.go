package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var addrRE = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return LocalAddr(port)
}

func stopAtEnd(t *testing.T, p *Process) {
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func TestStartReadiness(t *testing.T) {
	addr := freeAddr(t)
	for _, tc := range []struct {
		name    string
		act     string
		args    []string
		ready   []Check
		wantErr error  // nil: ready
		wantLog string // in the error, or in the log when ready
	}{
		{name: "no checks", act: "sleep"},
		{name: "line", act: "http", args: []string{"127.0.0.1:0", "200"},
			ready: []Check{Line(addrRE)}, wantLog: "listening addr="},
		{name: "HTTP status wanted", act: "http", args: []string{addr, "204"},
			ready: []Check{HTTPGet(nil, "http://"+addr+"/", 204)}},
		{name: "HTTP any status", act: "http", args: []string{addr, "403"},
			ready: []Check{Dial("tcp", addr), HTTPGet(nil, "http://"+addr+"/")}},
		{name: "HTTP wrong status", act: "http", args: []string{addr, "503"},
			ready:   []Check{HTTPGet(nil, "http://"+addr+"/", 200)},
			wantErr: ErrNotReady, wantLog: "status 503"},
		{name: "func", act: "sleep",
			ready: []Check{Func("always", func(context.Context) error { return nil })}},
		{name: "exits during startup", act: "exit", args: []string{"no", "config"},
			ready:   []Check{Dial("tcp", addr)},
			wantErr: ErrExited, wantLog: "boom: no config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := helperSpec(t, tc.act, tc.args...)
			spec.Ready, spec.ReadyTimeout = tc.ready, 2*time.Second
			p, err := Start(context.Background(), spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantLog) {
					t.Errorf("error does not carry %q:\n%v", tc.wantLog, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code := p.ExitCode(); code != -1 {
				t.Errorf("ExitCode of a running process = %d", code)
			}
			stopAtEnd(t, p)
			if !strings.Contains(p.Log(), tc.wantLog) {
				t.Errorf("log %q lacks %q", p.Log(), tc.wantLog)
			}
		})
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	spec := helperSpec(t, "sleep")
	spec.Ready = []Check{Func("never", func(context.Context) error { return errors.New("not yet") })}
	start := time.Now()
	_, err := Start(ctx, spec)
	if !errors.Is(err, ErrNotReady) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrNotReady and context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Start took %s with a cancelled context", d)
	}
}

func TestMatchFindsTheAddressLine(t *testing.T) {
	spec := helperSpec(t, "http", "127.0.0.1:0", "200")
	spec.Ready = []Check{Line(addrRE)}
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	m := p.Match(addrRE)
	if m == nil {
		t.Fatalf("no match in %q", p.Log())
	}
	if err := p.WaitReady(context.Background(), 2*time.Second, HTTPGet(nil, "http://"+m[1]+"/", 200)); err != nil {
		t.Errorf("the address the line named does not answer: %v", err)
	}
	// A regexp no Line check watched is searched in the kept log.
	if got := p.Match(regexp.MustCompile(`^(listening)`)); len(got) != 2 || got[1] != "listening" {
		t.Errorf("unwatched Match = %q", got)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	spec := helperSpec(t, "ignore-term")
	spec.Ready = []Check{Line(regexp.MustCompile("ignoring SIGTERM"))}
	spec.StopGrace = 200 * time.Millisecond
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("Stop returned with the process running")
	}
	var ee interface{ Sys() any }
	if !errors.As(p.Err(), &ee) || !strings.Contains(p.Err().Error(), "killed") {
		t.Errorf("exit = %v, want killed", p.Err())
	}
	if d := time.Since(start); d < spec.StopGrace {
		t.Errorf("killed after %s, before the %s grace", d, spec.StopGrace)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestLogKeptAcrossRestarts(t *testing.T) {
	log := NewLog(0)
	for i := range 2 {
		spec := helperSpec(t, "print", fmt.Sprintf("run %d out", i), fmt.Sprintf("run %d err", i))
		spec.Log = log
		spec.Ready = []Check{Line(regexp.MustCompile(fmt.Sprintf("run %d err", i)))}
		p, err := Start(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	want := "run 0 out\nrun 0 err\nrun 1 out\nrun 1 err\n"
	if got := log.String(); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Spec{Path: "/nonexistent/minio"})
	if err == nil || !strings.Contains(err.Error(), "starting minio") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
	if _, err := Start(context.Background(), Spec{}); err == nil {
		t.Error("empty Spec started")
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		act  string
		want int
	}{{"exit", 3}, {"print", 0}} {
		t.Run(tc.act, func(t *testing.T) {
			p, err := Start(context.Background(), helperSpec(t, tc.act))
			if err != nil {
				t.Fatal(err)
			}
			if tc.act == "print" {
				p.Stop() // print sleeps after printing; SIGTERM ends it
				tc.want = -1
			}
			<-p.Done()
			if got := p.ExitCode(); got != tc.want {
				t.Errorf("ExitCode = %d, want %d", got, tc.want)
			}
		})
	}
}
