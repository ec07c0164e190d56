package httpmw_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/httpmw"
)

// syncBuffer collects log output written by server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// lines decodes the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testRoute is a stand-in route function: /v2/<repo>/manifests/<ref>.
func testRoute(r *http.Request) httpmw.Route {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
	if len(parts) != 2 {
		return httpmw.Route{}
	}
	return httpmw.Route{Template: "/v2/{name}/manifests/{reference}", Repository: parts[0], Reference: parts[1]}
}

type testServer struct {
	*httptest.Server
	log     *syncBuffer
	metrics *prometheus.Registry
}

// newTestServer serves h through the whole Chain, logging JSON at level.
func newTestServer(t *testing.T, h http.Handler, level slog.Level, trusted ...string) *testServer {
	t.Helper()
	buf := &syncBuffer{}
	reg := prometheus.NewRegistry()
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	proxies, err := httpmw.ParseProxies(trusted)
	if err != nil {
		t.Fatal(err)
	}
	chain := httpmw.Chain(httpmw.Options{
		Logger:         slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level})),
		TrustedProxies: proxies,
		Route:          testRoute,
		Metrics:        m,
	})
	srv := httptest.NewUnstartedServer(chain(h))
	srv.Config.ErrorLog = nil
	srv.Start()
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, log: buf, metrics: reg}
}

func get(t *testing.T, url string, headers ...string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

func TestPanicRecovery(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		panic("handler bug")
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial answer")
		w.(http.Flusher).Flush()
		panic("bug after the answer started")
	})
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	srv := newTestServer(t, mux, slog.LevelInfo)

	tests := []struct {
		path       string
		wantStatus int    // 0: the transfer must fail (connection aborted)
		wantBody   string // substring
		wantPanic  bool   // a "panic serving request" line with a stack
	}{
		{"/boom", 500, `"code":"UNKNOWN"`, true},
		{"/ok", 200, "fine", false},
		{"/late", 0, "", true},
		{"/ok", 200, "fine", false},
		{"/abort", 0, "", false},
		{"/ok", 200, "fine", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := len(srv.log.lines(t))
			resp, body, err := get(t, srv.URL+tt.path)
			if tt.wantStatus == 0 {
				if err == nil {
					t.Fatalf("GET %s: complete answer %d %q; want an aborted transfer", tt.path, resp.StatusCode, body)
				}
			} else {
				if err != nil {
					t.Fatalf("GET %s: %v", tt.path, err)
				}
				if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
					t.Fatalf("GET %s = %d %q; want %d containing %q", tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
				}
			}
			var panics []map[string]any
			for _, l := range srv.log.lines(t)[before:] {
				if l["msg"] == "panic serving request" {
					panics = append(panics, l)
				}
			}
			if tt.wantPanic != (len(panics) == 1) || len(panics) > 1 {
				t.Fatalf("panic log lines = %d; want %v", len(panics), tt.wantPanic)
			}
			if tt.wantPanic {
				p := panics[0]
				if p["request_id"] == "" || !strings.Contains(p["stack"].(string), "httpmw_test") {
					t.Errorf("panic line without request id or stack: %v", p)
				}
				if resp != nil && resp.Header.Get("X-Request-Id") != p["request_id"] {
					t.Errorf("panic logged under %v, answered with X-Request-Id %q", p["request_id"], resp.Header.Get("X-Request-Id"))
				}
			}
		})
	}
}

func TestAccessLogOneLinePerRequest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
		}
		io.WriteString(w, strings.Repeat("x", int(n)+3))
	})
	srv := newTestServer(t, h, slog.LevelInfo)
	reqs := []struct {
		method, path, body, id string
		status                 int
		route, repo, ref       string
	}{
		{"GET", "/v2/team/app/manifests/v1", "", "client-id-1", 200, "/v2/{name}/manifests/{reference}", "team/app", "v1"},
		{"PUT", "/v2/app/manifests/sha256:abc", "hello", "", 201, "/v2/{name}/manifests/{reference}", "app", "sha256:abc"},
		{"GET", "/elsewhere", "", "bad id with spaces", 200, httpmw.OtherRoute, "", ""},
	}
	var gotIDs []string
	for _, rq := range reqs {
		req, _ := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
		req.Header.Set("User-Agent", "stratus-test/1")
		if rq.id != "" {
			req.Header.Set("X-Request-Id", rq.id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		gotIDs = append(gotIDs, resp.Header.Get("X-Request-Id"))
	}
	var access []map[string]any
	for _, l := range srv.log.lines(t) {
		if l["msg"] == "access" {
			access = append(access, l)
		}
	}
	if len(access) != len(reqs) {
		t.Fatalf("%d access lines for %d requests:\n%s", len(access), len(reqs), srv.log)
	}
	for i, rq := range reqs {
		l := access[i]
		wantID := rq.id
		if rq.id == "" || strings.Contains(rq.id, " ") {
			if gotIDs[i] == rq.id || gotIDs[i] == "" {
				t.Errorf("request %d: insane request id %q echoed as %q; want a fresh one", i, rq.id, gotIDs[i])
			}
			wantID = gotIDs[i]
		}
		if gotIDs[i] != wantID || l["request_id"] != wantID {
			t.Errorf("request %d: id answered %q, logged %v; want %q", i, gotIDs[i], l["request_id"], wantID)
		}
		want := map[string]any{
			"method": rq.method, "route": rq.route, "repo": rq.repo, "reference": rq.ref,
			"status": float64(rq.status), "bytes_in": float64(len(rq.body)), "bytes_out": float64(len(rq.body) + 3),
			"user_agent": "stratus-test/1", "client_ip": "127.0.0.1",
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("request %d: %s = %v; want %v", i, k, l[k], v)
			}
		}
		if _, ok := l["took"]; !ok {
			t.Errorf("request %d: no duration in %v", i, l)
		}
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"stratus_http_requests_total", map[string]string{"route": "/v2/{name}/manifests/{reference}", "method": "PUT", "status": "201"}, 1},
		{"stratus_http_requests_total", map[string]string{"route": "/v2/{name}/manifests/{reference}", "method": "GET", "status": "200"}, 1},
		{"stratus_http_requests_total", map[string]string{"route": "other", "method": "GET", "status": "200"}, 1},
		{"stratus_http_request_bytes_total", map[string]string{"route": "/v2/{name}/manifests/{reference}", "method": "PUT"}, 5},
		{"stratus_http_response_bytes_total", map[string]string{"route": "/v2/{name}/manifests/{reference}", "method": "PUT"}, 8},
		{"stratus_http_request_duration_seconds", map[string]string{"route": "other", "method": "GET"}, 1},
		{"stratus_http_requests_in_flight", nil, 0},
	} {
		if got := metricValue(t, srv.metrics, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v; want %v", m.name, m.labels, got, m.want)
		}
	}
}

// metricValue is a counter's or gauge's value, or a histogram's count, of
// the series of name with exactly labels; -1 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range mt.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if !maps.Equal(got, labels) && (len(got) > 0 || len(labels) > 0) {
				continue
			}
			switch {
			case mt.Counter != nil:
				return mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue()
			case mt.Histogram != nil:
				return float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, httpmw.ClientIP(r.Context())) })
	untrusted := newTestServer(t, h, slog.LevelInfo)              // trusts nobody
	trusted := newTestServer(t, h, slog.LevelInfo, "127.0.0.0/8") // trusts the test client's peer
	tests := []struct {
		name string
		srv  *testServer
		xff  string
		want string
	}{
		{"untrusted peer: XFF ignored", untrusted, "203.0.113.9", "127.0.0.1"},
		{"untrusted peer: spoofed chain ignored", untrusted, "10.0.0.1, 127.0.0.5", "127.0.0.1"},
		{"trusted peer: client from XFF", trusted, "203.0.113.9", "203.0.113.9"},
		{"trusted peer: rightmost untrusted wins over a spoofed left", trusted, "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"trusted peer: trusted hops skipped", trusted, "203.0.113.9, 127.0.0.8", "203.0.113.9"},
		{"trusted peer: garbage stops the walk", trusted, "203.0.113.9, not-an-ip", "127.0.0.1"},
		{"trusted peer: no header", trusted, "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.xff != "" {
				headers = []string{"X-Forwarded-For", tt.xff}
			}
			_, body, err := get(t, tt.srv.URL+"/", headers...)
			if err != nil {
				t.Fatal(err)
			}
			if body != tt.want {
				t.Errorf("client ip = %q; want %q", body, tt.want)
			}
			lines := tt.srv.log.lines(t)
			if last := lines[len(lines)-1]; last["client_ip"] != tt.want {
				t.Errorf("access log client_ip = %v; want %q", last["client_ip"], tt.want)
			}
		})
	}
}

func TestSecretsRedacted(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	srv := newTestServer(t, h, slog.LevelDebug)
	_, _, err := get(t, srv.URL+"/v2/app/manifests/v1?n=10&access_token=tok-SECRET1&X-Amz-Signature=sig-SECRET2",
		"Authorization", "Bearer bearer-SECRET3", "Cookie", "session=cookie-SECRET4", "X-Api-Key", "key-SECRET5",
		"Accept", "application/vnd.oci.image.manifest.v1+json")
	if err != nil {
		t.Fatal(err)
	}
	out := srv.log.String()
	if strings.Contains(out, "SECRET") {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
	for _, want := range []string{"Authorization: [REDACTED]", "Cookie: [REDACTED]", "X-Api-Key: [REDACTED]",
		"Accept: application/vnd.oci.image.manifest.v1+json", "access_token=[REDACTED]", "n=10"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestParseProxies(t *testing.T) {
	tests := []struct {
		in      []string
		want    []netip.Prefix
		wantErr string
	}{
		{[]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::/32"}, []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}, ""},
		{[]string{"10.1.2.3/8"}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{[]string{"10.0.0.0/33", "proxy.local", "10.0.0.1"}, nil, `"10.0.0.0/33", "proxy.local"`},
	}
	for _, tt := range tests {
		got, err := httpmw.ParseProxies(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseProxies(%q) error = %v; want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("ParseProxies(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseProxies(%q)[%d] = %v; want %v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}
