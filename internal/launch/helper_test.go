package launch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a child process for the tests
// instead of running them; its value names the act.
const helperEnv = "LAUNCH_TEST_HELPER"

func TestMain(m *testing.M) {
	if act := os.Getenv(helperEnv); act != "" {
		helper(act, os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

// helperSpec runs the test binary as a helper child doing act with args.
func helperSpec(t *testing.T, act string, args ...string) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "helper-" + act, Path: exe, Args: args, Env: []string{helperEnv + "=" + act}}
}

// helper is the child's side. Every act that does not exit by itself
// sleeps until it is signalled.
func helper(act string, args []string) {
	switch act {
	case "print": // print each argument as a line, to stdout and stderr in turn
		for i, a := range args {
			out := os.Stdout
			if i%2 == 1 {
				out = os.Stderr
			}
			fmt.Fprintln(out, a)
		}
	case "exit": // say why, and exit 3
		fmt.Fprintln(os.Stderr, "boom:", strings.Join(args, " "))
		os.Exit(3)
	case "http": // serve GETs on args[0] with status args[1]
		status, _ := strconv.Atoi(args[1])
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("listening addr=" + ln.Addr().String())
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	case "ignore-term": // survive SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
	case "spawn": // start a grandchild in this process group; print its pid
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("grandchild pid=" + strconv.Itoa(cmd.Process.Pid))
	case "launch": // Start a sleeping child through this package, print its pid, exit
		exe, _ := os.Executable()
		p, err := Start(context.Background(), Spec{Path: exe, Env: []string{helperEnv + "=sleep"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("child pid=" + strconv.Itoa(p.Pid()))
		os.Exit(0)
	case "sleep":
	default:
		fmt.Fprintln(os.Stderr, "unknown helper act", act)
		os.Exit(2)
	}
	time.Sleep(time.Minute)
	os.Exit(0)
}
