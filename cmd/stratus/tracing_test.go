package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/stratus-registry/stratus/internal/launch"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func TestTracingConfig(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		env       []string
		wantRatio float64 // with wantErr empty and tracing enabled
		wantErr   []string
	}{
		{name: "off by default"},
		{name: "on with defaults", file: "tracing:\n  enabled: true\n", wantRatio: 1},
		{name: "explicit zero ratio is meaningful", file: "tracing:\n  enabled: true\n  sample_ratio: 0\n", wantRatio: 0},
		{name: "from the environment", env: []string{"STRATUS_TRACING_ENABLED=true", "STRATUS_TRACING_ENDPOINT=https://otel.example:4318",
			"STRATUS_TRACING_SAMPLE_RATIO=0.25", "STRATUS_TRACING_HEADERS=x-api-key=s3cret,x-tenant=a"}, wantRatio: 0.25},
		{name: "ratio above 1", file: "tracing:\n  enabled: true\n  sample_ratio: 1.5\n", wantErr: []string{"tracing.sample_ratio: 1.5"}},
		{name: "plain http needs insecure", file: "tracing:\n  enabled: true\n  endpoint: http://127.0.0.1:4318\n", wantErr: []string{"tracing.endpoint: \"http://127.0.0.1:4318\" is plain HTTP"}},
		{name: "insecure contradicts https", file: "tracing:\n  endpoint: https://c:4318\n  insecure: true\n", wantErr: []string{"tracing.insecure"}},
		{name: "not a URL", file: "tracing:\n  endpoint: 127.0.0.1:4318\n", wantErr: []string{"tracing.endpoint"}},
		{name: "bad header name", file: "tracing:\n  headers:\n    \"bad name\": x\n", wantErr: []string{"tracing.headers: \"bad name\""}},
		{name: "header without value in env", env: []string{"STRATUS_TRACING_HEADERS=novalue"}, wantErr: []string{"want name=value"}},
		{name: "explicit empty service name", file: "tracing:\n  enabled: true\n  service_name: \"\"\n", wantErr: []string{"tracing.service_name"}},
		{name: "every error at once", file: "tracing:\n  endpoint: ftp://x\n  sample_ratio: -1\n", wantErr: []string{"tracing.endpoint", "tracing.sample_ratio"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadCase(t, tt.file, tt.env, tt.wantErr)
			if cfg == nil {
				return
			}
			tc := cfg.Tracing
			if !tc.Enabled {
				if tc.SampleRatio != nil {
					t.Errorf("tracing off got a sample ratio default %v", *tc.SampleRatio)
				}
				return
			}
			if tc.SampleRatio == nil || *tc.SampleRatio != tt.wantRatio || tc.ServiceName != "stratus" {
				t.Errorf("tracing = %+v, want ratio %v and service stratus", tc, tt.wantRatio)
			}
		})
	}
}

// With tracing off nothing is wrapped: the driver and the store are the
// very values opened, and the request chain gets no tracer.
func TestTracingOffWrapsNothing(t *testing.T) {
	tr, err := openTracing(context.Background(), TracingConfig{}, slog.New(slog.DiscardHandler))
	if err != nil || tr != nil {
		t.Fatalf("openTracing(off) = %v, %v; want nil, nil", tr, err)
	}
	d := inmemory.New()
	if got := tr.storage(d); got != d {
		t.Errorf("storage driver with tracing off is %T, want the unwrapped *inmemory.Driver", got)
	}
	s := memory.New()
	defer s.Close()
	if got := tr.locking(s, "memory"); got != s {
		t.Errorf("lock store with tracing off is %T, want the unwrapped store", got)
	}
	if tr.httpTracer() != nil {
		t.Error("http tracer with tracing off is not nil")
	}
	tr.shutdown(slog.New(slog.DiscardHandler)) // a no-op, must not panic
}

// otlpReceiver is an OTLP/HTTP collector: it decodes every POST /v1/traces.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces protobuf", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func (o *otlpReceiver) received() []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*tracepb.Span(nil), o.spans...)
}

// TestServeExportsRequestSpans runs serve with tracing on against an
// in-test OTLP/HTTP receiver, pushes an image with a traceparent on the
// manifest PUT, and checks the exported tree after the shutdown flush.
func TestServeExportsRequestSpans(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	port, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := launch.LocalAddr(port)
	cfg, err := loadConfig("", nil, []string{"http.addr=" + addr, "metrics.addr=off", "storage.driver=inmemory",
		"tracing.enabled=true", "tracing.insecure=true", "tracing.endpoint=" + collector.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, &lockedWriter{w: &logs}) }()
	base := "http://" + addr
	waitHealthy(t, base, done)

	blob := []byte("layer bytes")
	blobDigest := sha(blob)
	config := []byte("{}")
	configDigest := sha(config)
	for _, b := range [][]byte{blob, config} {
		do(t, http.MethodPost, base+"/v2/app/blobs/uploads/?digest="+sha(b), "", b, nil, http.StatusCreated)
	}
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		configDigest, len(config), blobDigest, len(blob))
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	do(t, http.MethodPut, base+"/v2/app/manifests/v1", "application/vnd.oci.image.manifest.v1+json", []byte(manifest),
		map[string]string{"Traceparent": "00-" + traceID + "-" + parentID + "-01"}, http.StatusCreated)

	cancel() // SIGTERM: drain, then the provider flushes
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after cancel")
	}

	spans := recv.received()
	var server *tracepb.Span
	for _, s := range spans {
		if s.GetName() == "PUT /v2/{name}/manifests/{reference}" {
			server = s
		}
	}
	if server == nil {
		t.Fatalf("no manifest PUT server span among %d spans: %v", len(spans), spanNames(spans))
	}
	if hex.EncodeToString(server.GetTraceId()) != traceID || hex.EncodeToString(server.GetParentSpanId()) != parentID {
		t.Errorf("server span trace %x parent %x; want the incoming traceparent %s/%s",
			server.GetTraceId(), server.GetParentSpanId(), traceID, parentID)
	}
	if server.GetKind() != tracepb.Span_SPAN_KIND_SERVER || attr(server, "http.route") != "/v2/{name}/manifests/{reference}" ||
		attr(server, "stratus.repository") != "app" || attr(server, "http.response.status_code") != "201" {
		t.Errorf("server span kind %v attributes %v", server.GetKind(), server.GetAttributes())
	}
	children := map[string]int{}
	for _, s := range spans {
		if bytes.Equal(s.GetTraceId(), server.GetTraceId()) && bytes.Equal(s.GetParentSpanId(), server.GetSpanId()) {
			children[strings.SplitN(s.GetName(), ".", 2)[0]]++
			if strings.HasPrefix(s.GetName(), "storage.") && attr(s, "stratus.storage.driver") != "inmemory" {
				t.Errorf("storage span %s without the driver name: %v", s.GetName(), s.GetAttributes())
			}
		}
	}
	if children["storage"] == 0 || children["locking"] == 0 {
		t.Errorf("children of the manifest PUT span by kind: %v; want storage and locking spans (all spans: %v)", children, spanNames(spans))
	}
	// The blob pushes are traces of their own, with storage children too.
	uploads := 0
	for _, s := range spans {
		if s.GetName() == "POST /v2/{name}/blobs/uploads/" {
			uploads++
		}
	}
	if uploads != 2 {
		t.Errorf("%d upload server spans, want 2", uploads)
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			if v, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
				return fmt.Sprint(v.IntValue)
			}
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func spanNames(spans []*tracepb.Span) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.GetName()
	}
	return out
}

func waitHealthy(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("serve never became healthy")
}

func do(t *testing.T, method, url, contentType string, body []byte, headers map[string]string, want int) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s; want %d", method, url, resp.Status, msg, want)
	}
}

// lockedWriter serialises the server's log writes to a buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
