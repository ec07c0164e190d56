package launch

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStopReachesTheProcessGroup(t *testing.T) {
	re := regexp.MustCompile(`grandchild pid=(\d+)`)
	spec := helperSpec(t, "spawn")
	spec.Ready = []Check{Line(re)}
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(p.Match(re)[1])
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func TestChildDiesWithItsParent(t *testing.T) {
	re := regexp.MustCompile(`child pid=(\d+)`)
	spec := helperSpec(t, "launch")
	spec.Ready = []Check{Line(re)}
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	<-p.Done() // the parent exits as soon as it has printed
	pid, _ := strconv.Atoi(p.Match(re)[1])
	waitGone(t, pid)
}

func TestPauseResume(t *testing.T) {
	addr := freeAddr(t)
	spec := helperSpec(t, "http", addr, "200")
	spec.Ready = []Check{HTTPGet(nil, "http://"+addr+"/", 200)}
	p, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	probe := HTTPGet(nil, "http://"+addr+"/", 200)
	if err := probe.Ready(context.Background(), p); err == nil {
		t.Error("a paused server answered")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(context.Background(), 5*time.Second, probe); err != nil {
		t.Errorf("after Resume: %v", err)
	}
	// Stop resumes a paused process so that it can act on SIGTERM.
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil || !p.Exited() {
		t.Errorf("Stop of a paused process: %v, exited %v", err, p.Exited())
	}
}

// waitGone waits until pid has exited: no such process, or a zombie that
// nobody reaps (containers often have no init that does).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil && syscall.Kill(pid, 0) != nil {
			return
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
