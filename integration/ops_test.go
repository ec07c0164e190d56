package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

var metricsAddrRE = regexp.MustCompile(`metrics endpoint up.*metrics_addr=(127\.0\.0\.1:\d+)`)

// metricsURL is the /metrics URL of a server, from its log.
func metricsURL(t *testing.T, s *server) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := metricsAddrRE.FindStringSubmatch(s.Log()); m != nil {
			return "http://" + m[1] + "/metrics"
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics listener in the log:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape reads and parses a /metrics endpoint.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return mfs
}

// sample is the value of the series of name carrying all of labels: a
// counter's or gauge's value, a histogram's count; 0 when absent.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

func layerBytes(t *testing.T, img v1.Image) float64 {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for _, l := range layers {
		sz, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		n += sz
	}
	return float64(n)
}

// TestMetricsAfterPushAndPull scrapes a real server's metrics listener
// before and after a push and a pull, and checks that the series moved
// with the right labels.
func TestMetricsAfterPushAndPull(t *testing.T) {
	srv := startServer(t, []string{"--root", t.TempDir()})
	murl := metricsURL(t, srv)
	before := scrape(t, murl)

	img, err := random.Image(300<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, srv, "ops/metrics:v1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	layersEqual(t, img, pulled) // reads every layer through the registry
	after := scrape(t, murl)
	size := layerBytes(t, img)

	const manifest, blob, uploads = "/v2/{name}/manifests/{reference}", "/v2/{name}/blobs/{digest}", "/v2/{name}/blobs/uploads/{uuid}"
	tests := []struct {
		name    string
		labels  map[string]string
		atLeast float64
	}{
		{"stratus_http_requests_total", map[string]string{"route": manifest, "method": "PUT", "status": "201"}, 1},
		{"stratus_http_requests_total", map[string]string{"route": manifest, "method": "GET", "status": "200"}, 1},
		{"stratus_http_requests_total", map[string]string{"route": blob, "method": "GET", "status": "200"}, 3},
		{"stratus_http_requests_total", map[string]string{"route": "/v2/{name}/blobs/uploads/", "method": "POST", "status": "202"}, 3},
		{"stratus_http_request_duration_seconds", map[string]string{"route": manifest, "method": "PUT"}, 1},
		{"stratus_http_request_bytes_total", map[string]string{"route": uploads}, size},
		{"stratus_http_response_bytes_total", map[string]string{"route": blob, "method": "GET"}, size},
		{"stratus_storage_operation_duration_seconds", map[string]string{"driver": "filesystem", "op": "put"}, 1},
		{"stratus_storage_operation_duration_seconds", map[string]string{"driver": "filesystem", "op": "read"}, 3},
		{"stratus_storage_written_bytes_total", map[string]string{"driver": "filesystem"}, size},
		{"stratus_storage_read_bytes_total", map[string]string{"driver": "filesystem"}, size},
		{"stratus_locking_operation_duration_seconds", map[string]string{"backend": "in-process", "op": "pin"}, 1},
	}
	for _, tt := range tests {
		moved := sample(after, tt.name, tt.labels) - sample(before, tt.name, tt.labels)
		if moved < tt.atLeast {
			t.Errorf("%s%v moved by %v; want at least %v", tt.name, tt.labels, moved, tt.atLeast)
		}
	}
	if n := sample(after, "stratus_storage_errors_total", nil); n != 0 {
		t.Errorf("storage errors after a clean push and pull: %v (not-found lookups must not count)", n)
	}
	for _, name := range []string{"stratus_gc_runs_total", "stratus_pins_refused_total", "go_goroutines", "process_cpu_seconds_total", "stratus_http_requests_in_flight"} {
		if after[name] == nil {
			t.Errorf("series %s missing", name)
		}
	}
	// Not on the public port unless metrics.main_port says so.
	if resp := httpDo(t, "GET", srv.URL()+"/metrics", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /metrics = %s; want 404 by default", resp.Status)
	}
	// One access line for the tag PUT, with the labels an operator greps for.
	if !regexp.MustCompile(`msg=access request_id=\w+ method=PUT route=/v2/\{name\}/manifests/\{reference\} repo=ops/metrics reference=v1 status=201`).MatchString(srv.Log()) {
		t.Errorf("no access line for the manifest PUT:\n%s", tail(srv.Log(), 20))
	}
}

func TestMetricsOnMainPortWhenConfigured(t *testing.T) {
	srv := startServer(t, []string{"--root", t.TempDir(), "--set", "metrics.addr=off", "--set", "metrics.main_port=true"})
	resp := httpDo(t, "GET", srv.URL()+"/v2/", nil)
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	mfs := scrape(t, srv.URL()+"/metrics")
	if sample(mfs, "stratus_http_requests_total", map[string]string{"route": "/v2/", "status": "200"}) < 1 {
		t.Error("the /v2/ request is not counted on the main-port /metrics")
	}
	if strings.Contains(srv.Log(), "metrics endpoint up") {
		t.Error("metrics.addr=off still opened a metrics listener")
	}
}

// tcpProxy forwards a loopback port to a backend; Stop refuses connections
// (and cuts open ones) the way a stopped server does, Start brings the same
// port back.
type tcpProxy struct {
	t       *testing.T
	addr    string
	backend string
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
}

func newTCPProxy(t *testing.T, backend string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, backend: backend, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

func (p *tcpProxy) Start() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old listener's port may take a moment to free
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go p.accept(ln)
}

func (p *tcpProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		go func() { io.Copy(b, c); b.Close() }()
		go func() { io.Copy(c, b); c.Close() }()
	}
}

func (p *tcpProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// waitReady polls /readyz until it answers want, and returns the body.
func waitReady(t *testing.T, s *server, want int, within time.Duration) string {
	t.Helper()
	return waitReadyBody(t, s, want, "", within)
}

// waitReadyBody waits until /readyz answers want with a body containing
// wantBody.
func waitReadyBody(t *testing.T, s *server, want int, wantBody string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		resp, err := http.Get(s.URL() + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want && strings.Contains(string(body), wantBody) {
				return string(body)
			}
			last = fmt.Sprintf("%s %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %v; last: %s\n%s", want, within, last, tail(s.Log(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadyzFollowsBackends stops the object store (MinIO behind a proxy
// that stops forwarding) and Redis under a running replica: /readyz flips
// to 503 and back for the store, and reports Redis degraded (still 200:
// pulls work without it, and every replica shares it, so failing
// readiness would take the whole fleet out of rotation) and back, without
// details in the body.
func TestReadyzFollowsBackends(t *testing.T) {
	minio := s3test.Start(t)
	proxy := newTCPProxy(t, strings.TrimPrefix(minio.Endpoint, "http://"))
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	srv := startServer(t, append(s3ArgsVia(minio, uniquePrefix(t), "http://"+proxy.addr),
		"--set", "redis.addrs="+redis.Addr(), "--set", "storage.s3.max_retries=1"))

	steps := []struct {
		name   string
		act    func()
		status int
		body   string
	}{
		{"healthy", func() {}, 200, "ok"},
		{"storage stopped", proxy.Stop, 503, "storage backend unavailable"},
		{"storage back", proxy.Start, 200, "ok"},
		{"redis stopped", func() { redis.Stop() }, 200, "degraded: session store (redis) unavailable"},
		{"redis back", func() {
			if err := redis.Start(); err != nil {
				t.Fatal(err)
			}
		}, 200, "ok"},
	}
	for _, st := range steps {
		st.act()
		body := waitReadyBody(t, srv, st.status, st.body, 20*time.Second)
		if !strings.Contains(body, st.body) || strings.Contains(body, "127.0.0.1") {
			t.Errorf("%s: /readyz body %q; want %q and no address", st.name, body, st.body)
		}
		if resp := httpDo(t, "GET", srv.URL()+"/healthz", nil); resp.StatusCode != 200 {
			t.Errorf("%s: /healthz = %s; the process is alive", st.name, resp.Status)
		}
	}
}

// TestReadyzCached: many probes within a second cost one storage probe.
func TestReadyzCached(t *testing.T) {
	srv := startServer(t, []string{"--root", t.TempDir()})
	murl := metricsURL(t, srv)
	stats := func() float64 {
		return sample(scrape(t, murl), "stratus_storage_operation_duration_seconds", map[string]string{"op": "stat"})
	}
	time.Sleep(1100 * time.Millisecond) // let the startup probes' cache expire
	before := stats()
	for range 20 {
		if resp := httpDo(t, "GET", srv.URL()+"/readyz", nil); resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	if n := stats() - before; n < 1 || n > 2 {
		t.Errorf("20 probes within ~1s made %v storage stats; want 1 (2 if the cache expired once)", n)
	}
}

// TestStartupFailsFastOnMisconfiguredStorage: bad credentials or a missing
// bucket stop `stratus serve` at once with the cause; an unreachable store
// is only a warning.
func TestStartupFailsFastOnMisconfiguredStorage(t *testing.T) {
	minio := s3test.Start(t)
	base := s3Args(minio, uniquePrefix(t))
	tests := []struct {
		name     string
		set      []string
		wantExit bool
		want     string
	}{
		{"wrong secret key", []string{"storage.s3.secret_key=wrong-secret"}, true, "secret key does not match"},
		{"missing bucket", []string{"storage.s3.bucket=no-such-bucket-here"}, true, "bucket does not exist"},
		{"store unreachable", []string{"storage.s3.endpoint=http://127.0.0.1:1", "storage.s3.max_retries=0"}, false, "storage did not answer the startup probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, base...)
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, stratusBin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if !tt.wantExit {
					t.Fatalf("exited (%v); want it to keep serving:\n%s", err, out.String())
				}
				if err == nil {
					t.Fatal("exited 0 on a misconfigured store")
				}
				if took := time.Since(start); took > 15*time.Second {
					t.Errorf("took %v to give up", took)
				}
			case <-time.After(8 * time.Second):
				cmd.Process.Kill()
				<-done
				if tt.wantExit {
					t.Fatalf("still running after 8s with a misconfigured store:\n%s", out.String())
				}
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
		})
	}
}
