package lockingtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
)

// redisInstall is the install command named when redis-server is missing:
// tests fail with it rather than skip, so CI cannot pass without running
// the Redis suite.
const redisInstall = "apt-get install -y redis-server"

// RedisServer is a throwaway redis-server subprocess: persistence off, its
// own temp directory, reachable on a unix socket or on a 127.0.0.1 port.
// Stop and Start (or Restart) keep the address, so fault tests can take it
// down under a live client and bring it back.
type RedisServer struct {
	bin  string
	dir  string
	tcp  bool   // RedisTCP was given
	sock string // unix socket path, without RedisTCP
	port int    // TCP port, with RedisTCP
	// password and tls are set by RedisPassword and RedisTLS.
	password string
	tls      *TLSFiles

	mu   sync.Mutex
	proc *launch.Process // nil when stopped

	log *launch.Log // what the server printed, across restarts
}

// RedisOption configures StartRedisServer.
type RedisOption func(*RedisServer)

// RedisTCP makes the server listen on a free 127.0.0.1 port instead of a
// unix socket, for clients that cannot dial unix sockets.
func RedisTCP() RedisOption { return func(r *RedisServer) { r.tcp = true } }

// RedisPassword makes the server require AUTH with password.
func RedisPassword(password string) RedisOption {
	return func(r *RedisServer) { r.password = password }
}

// RedisTLS makes the server accept only TLS on its TCP port, with the
// given certificate (see WriteTLSFiles). It implies RedisTCP.
func RedisTLS(files TLSFiles) RedisOption {
	return func(r *RedisServer) { r.tcp, r.tls = true, &files }
}

// StartRedisServer starts redis-server and waits until it answers PING.
// Close it when done.
func StartRedisServer(opts ...RedisOption) (*RedisServer, error) {
	bin, err := launch.Find("redis-server", redisInstall)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lockingtest-redis-")
	if err != nil {
		return nil, err
	}
	r := &RedisServer{bin: bin, dir: dir, log: launch.NewLog(0)}
	for _, o := range opts {
		o(r)
	}
	if r.tcp {
		if r.port, err = launch.FreePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	} else {
		r.sock = filepath.Join(dir, "redis.sock")
	}
	if err := r.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// StartRedis starts a server for one test (or benchmark) and closes it in
// t.Cleanup, printing its log if the test failed; it fails the test if the
// server cannot start.
func StartRedis(tb testing.TB, opts ...RedisOption) *RedisServer {
	tb.Helper()
	r, err := StartRedisServer(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redis-server log:\n%s", r.log.Tail(50))
		}
		if err := r.Close(); err != nil {
			tb.Errorf("stopping redis-server: %v", err)
		}
	})
	return r
}

// Addr is the address to put in redis.Config.Addrs: the socket path (which
// go-redis dials as a unix socket because it starts with "/"), or
// 127.0.0.1:port.
func (r *RedisServer) Addr() string {
	if r.sock != "" {
		return r.sock
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// network and address as net.Dial wants them.
func (r *RedisServer) dialArgs() (string, string) {
	if r.sock != "" {
		return "unix", r.sock
	}
	return "tcp", r.Addr()
}

// Start starts the server process on the server's address and waits until
// it answers PING. It is an error to start a server that is running. Data
// does not survive a Stop.
func (r *RedisServer) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil && !r.proc.Exited() {
		return errors.New("redis-server already running")
	}
	p, err := launch.Start(context.Background(), launch.Spec{
		Name:         "redis-server",
		Path:         r.bin,
		Args:         r.args(),
		Log:          r.log,
		Ready:        []launch.Check{launch.Func("PING", func(context.Context) error { return r.ping() })},
		ReadyTimeout: 10 * time.Second,
	})
	if err != nil {
		r.proc = nil
		return err
	}
	r.proc = p
	return nil
}

// args are redis-server's flags for the server's address and options.
func (r *RedisServer) args() []string {
	args := []string{
		"--save", "", "--appendonly", "no",
		"--dir", r.dir,
		"--daemonize", "no",
		"--logfile", "", // to stdout, captured in r.log
	}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	switch {
	case r.sock != "":
		args = append(args, "--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700")
	case r.tls != nil:
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
			"--tls-cert-file", r.tls.Cert, "--tls-key-file", r.tls.Key, "--tls-ca-cert-file", r.tls.CA,
			"--tls-auth-clients", "no")
	default:
		args = append(args, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1")
	}
	return args
}

// ping sends one PING over a fresh connection; it needs no client library.
func (r *RedisServer) ping() error {
	network, addr := r.dialArgs()
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	if r.tls != nil {
		pool, err := r.tls.pool()
		if err != nil {
			c.Close()
			return err
		}
		c = tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	cmd := "PING\r\n"
	if r.password != "" {
		cmd = "AUTH " + r.password + "\r\n" + cmd
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	if r.password != "" {
		if line, err := br.ReadString('\n'); err != nil || strings.TrimSpace(line) != "+OK" {
			return fmt.Errorf("AUTH answered %q: %v", strings.TrimSpace(line), err)
		}
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	// "-LOADING ..." and friends mean started but not ready yet.
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5s) and waits
// for it to exit. Stopping a stopped server does nothing.
func (r *RedisServer) Stop() error {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.Stop() // resumes a paused server first
	if r.sock != "" {
		os.Remove(r.sock) // left behind if it had to be killed
	}
	return err
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, which is how an overloaded or partitioned Redis looks to a
// client, as opposed to a stopped one refusing connections. Resume undoes
// it. Linux only.
func (r *RedisServer) Pause() error { return r.signal((*launch.Process).Pause) }

// Resume continues a paused server.
func (r *RedisServer) Resume() error { return r.signal((*launch.Process).Resume) }

func (r *RedisServer) signal(f func(*launch.Process) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return errors.New("redis-server not running")
	}
	return f(r.proc)
}

// Restart stops the server and starts it again on the same address.
func (r *RedisServer) Restart() error {
	if err := r.Stop(); err != nil {
		return err
	}
	return r.Start()
}

// Close stops the server and removes its directory.
func (r *RedisServer) Close() error {
	err := r.Stop()
	return errors.Join(err, os.RemoveAll(r.dir))
}

// Log returns what the server has printed so far (the last 64 KiB), for
// failure messages.
func (r *RedisServer) Log() string { return r.log.String() }
