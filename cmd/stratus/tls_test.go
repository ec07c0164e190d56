package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/tlsreload/tlstest"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func TestTLSConfigValidation(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	cert, key := ca.Issue(t, "server", false).Write(t, dir)
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		sets []string
		want []string // "" = valid
	}{
		{"cert and key", []string{"http.tls.cert=" + cert, "http.tls.key=" + key}, nil},
		{"with client CA", []string{"http.tls.cert=" + cert, "http.tls.key=" + key, "http.tls.client_ca=" + caFile}, nil},
		{"cert without key", []string{"http.tls.cert=" + cert}, []string{"http.tls: cert and key must be set together"}},
		{"client CA without cert and key", []string{"http.tls.client_ca=" + caFile}, []string{"http.tls.client_ca: mutual TLS needs http.tls.cert and http.tls.key"}},
		{"unreadable cert", []string{"http.tls.cert=" + missing, "http.tls.key=" + key}, []string{"http.tls.cert: " + missing}},
		{"unreadable key and client CA", []string{"http.tls.cert=" + cert, "http.tls.key=" + missing, "http.tls.client_ca=" + missing + "2"},
			[]string{"http.tls.key: " + missing, "http.tls.client_ca: " + missing + "2"}},
		{"key that does not match", []string{"http.tls.cert=" + cert, "http.tls.key=" + caFile}, []string{"http.tls.cert: " + cert}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig("", nil, tt.sets)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q, got none", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// startTestServers runs newServers on cfg with an in-memory registry and
// returns its public address and what it logged at startup.
func startTestServers(t *testing.T, cfg *Config) (addr string, logs string) {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	driver, locks := inmemory.New(), memory.New()
	t.Cleanup(func() { locks.Close() })
	reg, err := registry.New(context.Background(), cfg.Registry, registry.Deps{Storage: driver, Locking: locks})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := newObservability()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := newServers(ctx, cfg, reg, http.NotFoundHandler(), obs, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	logged := buf.String() // before start: only newServers wrote
	errc := srv.start()
	t.Cleanup(func() {
		srv.close()
		<-errc
	})
	return srv.ln.Addr().String(), logged
}

func TestPlainHTTPWarning(t *testing.T) {
	tests := []struct {
		addr string
		warn bool
	}{
		{":0", true},
		{"0.0.0.0:0", true},
		{"127.0.0.1:0", false},
		{"localhost:0", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			cfg, err := loadConfig("", nil, []string{"http.addr=" + tt.addr, "metrics.addr=off"})
			if err != nil {
				t.Fatal(err)
			}
			_, logs := startTestServers(t, cfg)
			if got := strings.Contains(logs, "plain HTTP on a non-loopback address"); got != tt.warn {
				t.Errorf("warning logged = %v, want %v; log:\n%s", got, tt.warn, logs)
			}
		})
	}
}

func TestServeTLSWithHTTP2(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	cert, key := ca.Issue(t, "server", false).Write(t, t.TempDir())
	cfg, err := loadConfig("", nil, []string{"http.addr=127.0.0.1:0", "metrics.addr=off", "http.tls.cert=" + cert, "http.tls.key=" + key})
	if err != nil {
		t.Fatal(err)
	}
	addr, logs := startTestServers(t, cfg)
	if strings.Contains(logs, "plain HTTP") {
		t.Errorf("TLS listener warned about plain HTTP:\n%s", logs)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("GET /v2/ over TLS: %s %s %q; want 200 over HTTP/2", resp.Proto, resp.Status, body)
	}
}
