package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is one child process (a server under test or a backend service).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// startProc starts a child that dies with the benchmark (Pdeathsig), so a
// crash or a timeout leaves nothing listening.
func startProc(name string, env []string, stdout io.Writer, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	out := io.Writer(p.log)
	if stdout != nil {
		out = io.MultiWriter(p.log, stdout)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		cmd.Wait()
		if c, ok := stdout.(io.Closer); ok {
			c.Close()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and kills after a grace period.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exitedErr(what string) error {
	return fmt.Errorf("%s exited before %s:\n%s", p.name, what, tail(p.log.String(), 30))
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// syncBuffer keeps the last part of a process's output; servers log for
// the whole run and must not grow the benchmark's memory without bound.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

const logKeep = 64 << 10

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if len(b.b) > 2*logKeep {
		b.b = append(b.b[:0], b.b[len(b.b)-logKeep:]...)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before the server binds; on 127.0.0.1 in a benchmark run
// that race is not worth more machinery.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var listenRE = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

// startStratus runs `stratus serve` on a kernel-chosen port and waits for
// /readyz.
func startStratus(ctx context.Context, bin, name string, args []string) (*proc, string, error) {
	pr, pw := io.Pipe()
	p, err := startProc(name, nil, pw, bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	if err != nil {
		return nil, "", err
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); !found && m != nil && strings.Contains(sc.Text(), "stratus listening") {
				addrc <- m[1]
				found = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var addr string
	select {
	case addr = <-addrc:
	case <-p.done:
		return nil, "", p.exitedErr("listening")
	case <-ctx.Done():
		p.stop()
		return nil, "", fmt.Errorf("%s did not start: %w\n%s", name, ctx.Err(), tail(p.log.String(), 30))
	}
	c := &client{base: "http://" + addr, hc: newHTTPClient()}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	rerr := c.waitReady(rctx, "/readyz")
	if rerr == nil {
		return p, addr, nil
	}
	// A readiness probe that is wrong about a server that does answer the
	// API should not stop the benchmark: go on, and report it.
	if err := c.waitReady(ctx, "/v2/"); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%s: %w\n%s", name, errors.Join(rerr, err), tail(p.log.String(), 30))
	}
	return p, addr, &notReadyError{name: name, log: lastMatching(p.log.String(), "not ready")}
}

// notReadyError: /readyz never answered 200, but /v2/ did.
type notReadyError struct{ name, log string }

func (e *notReadyError) Error() string {
	return fmt.Sprintf("%s: /readyz never answered 200 (benchmarked anyway, /v2/ answers): %s", e.name, e.log)
}

func lastMatching(log, substr string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// referenceStorage is the storage section of the reference registry's
// configuration.
type referenceStorage struct {
	rootDir string // filesystem
	s3      *minioServer
	bucket  string
}

// startReference runs the CNCF Distribution registry with redirects off,
// deletes on and its default in-memory blob descriptor cache, the way its
// sample configuration ships.
func startReference(ctx context.Context, bin, dir string, st referenceStorage) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var storage string
	if st.s3 != nil {
		storage = fmt.Sprintf(`  s3:
    regionendpoint: %s
    forcepathstyle: true
    bucket: %s
    accesskey: %s
    secretkey: %s
    region: us-east-1
    secure: false
`, st.s3.endpoint, st.bucket, st.s3.accessKey, st.s3.secretKey)
	} else {
		storage = fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", st.rootDir)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
%s  delete:
    enabled: true
  redirect:
    disable: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, storage, addr)
	cfgPath := filepath.Join(dir, "reference-config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	// OTEL_TRACES_EXPORTER=none: v3 would otherwise try to export traces.
	p, err := startProc("reference", []string{"OTEL_TRACES_EXPORTER=none"}, nil, bin, "serve", cfgPath)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c := &client{base: "http://" + addr, hc: newHTTPClient()}
	errc := make(chan error, 1)
	go func() { errc <- c.waitReady(ctx, "/v2/") }()
	select {
	case err = <-errc:
	case <-p.done:
		err = p.exitedErr("answering /v2/")
	}
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("reference registry: %w\n%s", err, tail(p.log.String(), 30))
	}
	return p, addr, nil
}

// startRedis runs a throwaway redis-server without persistence.
func startRedis(ctx context.Context, bin, dir string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProc("redis", nil, nil, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes")
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprint(conn, "PING\r\n")
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "+PONG") {
				return p, addr, nil
			}
		}
		select {
		case <-p.done:
			return nil, "", p.exitedErr("answering PING")
		case <-ctx.Done():
			p.stop()
			return nil, "", ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", errors.New("redis-server did not answer PING in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// minioServer is a throwaway MinIO on 127.0.0.1.
type minioServer struct {
	*proc
	endpoint, accessKey, secretKey string
}

func startMinio(ctx context.Context, bin, dir string) (*minioServer, error) {
	api, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &minioServer{endpoint: "http://127.0.0.1:" + strconv.Itoa(api), accessKey: "stratus-bench", secretKey: "stratus-bench-secret"}
	m.proc, err = startProc("minio", []string{
		"MINIO_ROOT_USER=" + m.accessKey, "MINIO_ROOT_PASSWORD=" + m.secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on", "HOME=" + dir,
	}, nil, bin, "server", filepath.Join(dir, "data"),
		"--address", "127.0.0.1:"+strconv.Itoa(api), "--console-address", "127.0.0.1:"+strconv.Itoa(console), "--quiet")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c := &client{base: m.endpoint, hc: newHTTPClient()}
	errc := make(chan error, 1)
	go func() { errc <- c.waitReady(ctx, "/minio/health/ready") }()
	select {
	case err = <-errc:
	case <-m.done:
		err = m.exitedErr("ready")
	}
	if err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// roundRobin is the load balancer in front of several replicas: no
// affinity, each request to the next replica, bodies streamed (never
// buffered, so a 1 GiB monolithic PUT passes through in constant memory).
type roundRobin struct {
	srv  *http.Server
	addr string
	next atomic.Uint64
}

func startRoundRobin(backends []string, logger *slog.Logger) (*roundRobin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rr := &roundRobin{addr: ln.Addr().String()}
	transport := newHTTPClient().Transport
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := rr.next.Add(1) % uint64(len(backends))
			pr.SetURL(&url.URL{Scheme: "http", Host: backends[i]})
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
		// Absolute Locations naming a replica must point back at the
		// balancer, or the client would pin itself to one replica.
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				if u, err := url.Parse(loc); err == nil && u.Host != "" {
					u.Host = rr.addr
					resp.Header.Set("Location", u.String())
				}
			}
			return nil
		},
		ErrorLog:   slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BufferPool: bufPool{},
	}
	rr.srv = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go rr.srv.Serve(ln)
	return rr, nil
}

func (rr *roundRobin) close() { rr.srv.Close() }

// bufPool gives the proxy 256 KiB copy buffers, the size the client uses.
type bufPool struct{}

var proxyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (bufPool) Get() []byte  { return *(proxyBufs.Get().(*[]byte)) }
func (bufPool) Put(b []byte) { proxyBufs.Put(&b) }

// rssWatcher polls VmRSS of some processes and keeps the maximum of each.
type rssWatcher struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	peak  map[int]int64 // pid -> bytes
}

func watchRSS(pids []int, every time.Duration) *rssWatcher {
	w := &rssWatcher{stopc: make(chan struct{}), done: make(chan struct{}), peak: make(map[int]int64)}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, pid := range pids {
				if v, err := readRSS(pid); err == nil {
					w.mu.Lock()
					w.peak[pid] = max(w.peak[pid], v)
					w.mu.Unlock()
				}
			}
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop ends polling and returns the peak RSS per pid.
func (w *rssWatcher) stop() map[int]int64 {
	close(w.stopc)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
