package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
)

// listenRE finds the address in the line `stratus serve` logs once it
// listens.
var listenRE = regexp.MustCompile(`stratus listening.*\baddr=(127\.0\.0\.1:\d+)`)

// stopGrace is how long a server has to exit after SIGTERM: stratus drains
// its requests first.
const stopGrace = 10 * time.Second

// startStratus runs tl.Stratus as `stratus serve` on a kernel-chosen port and waits for
// /readyz.
func startStratus(ctx context.Context, tl tools, name string, args []string) (*launch.Process, string, error) {
	p, err := launch.Start(ctx, launch.Spec{
		Name: name,
		Path: tl.Stratus,
		Env:  tl.StratusEnv,
		// No separate metrics listener (several replicas on one machine
		// would fight over :9090): the bench reads GC counters from
		// /metrics on the public port.
		Args: append([]string{"serve", "--addr", "127.0.0.1:0",
			"--set", "metrics.addr=off", "--set", "metrics.main_port=true"}, args...),
		Ready:        []launch.Check{launch.Line(listenRE)},
		ReadyTimeout: 60 * time.Second,
		StopGrace:    stopGrace,
	})
	if err != nil {
		return nil, "", err
	}
	addr := p.Match(listenRE)[1]
	hc := newHTTPClient()
	rerr := p.WaitReady(ctx, 20*time.Second, launch.HTTPGet(hc, "http://"+addr+"/readyz", http.StatusOK))
	if rerr == nil {
		return p, addr, nil
	}
	// A readiness probe that is wrong about a server that does answer the
	// API should not stop the benchmark: go on, and report it.
	if err := p.WaitReady(ctx, 40*time.Second, launch.HTTPGet(hc, "http://"+addr+"/v2/", http.StatusOK)); err != nil {
		p.Stop()
		return nil, "", fmt.Errorf("%s: %w", name, errors.Join(rerr, err))
	}
	return p, addr, &notReadyError{name: name, log: lastMatching(p.Log(), "not ready")}
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
func startReference(ctx context.Context, bin, dir string, st referenceStorage) (*launch.Process, string, error) {
	port, err := launch.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := launch.LocalAddr(port)
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
	p, err := launch.Start(ctx, launch.Spec{
		Name: "reference",
		Path: bin,
		Args: []string{"serve", cfgPath},
		// OTEL_TRACES_EXPORTER=none: v3 would otherwise try to export traces.
		Env:          []string{"OTEL_TRACES_EXPORTER=none"},
		Ready:        []launch.Check{launch.HTTPGet(newHTTPClient(), "http://"+addr+"/v2/", http.StatusOK)},
		ReadyTimeout: 60 * time.Second,
		StopGrace:    stopGrace,
	})
	if err != nil {
		return nil, "", fmt.Errorf("reference registry: %w", err)
	}
	return p, addr, nil
}

// startRedis runs a throwaway redis-server without persistence.
func startRedis(ctx context.Context, bin, dir string) (*launch.Process, string, error) {
	port, err := launch.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := launch.LocalAddr(port)
	p, err := launch.Start(ctx, launch.Spec{
		Name: "redis",
		Path: bin,
		Args: []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes"},
		Ready:        []launch.Check{launch.Func("PING", func(ctx context.Context) error { return pingRedis(ctx, addr) })},
		ReadyTimeout: 20 * time.Second,
		StopGrace:    stopGrace,
	})
	if err != nil {
		return nil, "", err
	}
	return p, addr, nil
}

// pingRedis sends one PING over a fresh connection.
func pingRedis(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(conn, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// minioServer is a throwaway MinIO on 127.0.0.1.
type minioServer struct {
	*launch.Process
	endpoint, accessKey, secretKey string
}

func startMinio(ctx context.Context, bin, dir string) (*minioServer, error) {
	api, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	console, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	m := &minioServer{endpoint: "http://" + launch.LocalAddr(api), accessKey: "stratus-bench", secretKey: "stratus-bench-secret"}
	m.Process, err = launch.Start(ctx, launch.Spec{
		Name: "minio",
		Path: bin,
		Args: []string{"server", filepath.Join(dir, "data"),
			"--address", launch.LocalAddr(api), "--console-address", launch.LocalAddr(console), "--quiet"},
		Env: []string{
			"MINIO_ROOT_USER=" + m.accessKey, "MINIO_ROOT_PASSWORD=" + m.secretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on", "HOME=" + dir,
		},
		Ready:        []launch.Check{launch.HTTPGet(newHTTPClient(), m.endpoint+"/minio/health/ready", http.StatusOK)},
		ReadyTimeout: 60 * time.Second,
		StopGrace:    stopGrace,
	})
	if err != nil {
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

func readRSS(pid int) (int64, error) { return readStatusBytes(pid, "VmRSS") }
