package tlsreload_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/tlsreload"
	"github.com/stratus-registry/stratus/internal/tlsreload/tlstest"
)

// syncBuffer is a log sink the watcher goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tlsServer is a real HTTPS server on 127.0.0.1 serving from a Reloader.
type tlsServer struct {
	url string
	log *syncBuffer
}

func startTLSServer(t *testing.T, cfg tlsreload.Config) *tlsServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Debounce = 20 * time.Millisecond
	r, err := tlsreload.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.Watch(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(r.Proto))
		}),
		TLSConfig:         r.TLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.New(slog.NewTextHandler(logs, nil)).Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
		cancel()
		<-watched
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &tlsServer{url: "https://" + ln.Addr().String() + "/", log: logs}
}

// get makes one request on a fresh connection (a fresh handshake) and
// returns the response, or the error of the handshake or request.
func (s *tlsServer) get(t *testing.T, tc *tls.Config) (*http.Response, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(s.url)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// servedSerial is the serial number of the certificate the server shows.
func (s *tlsServer) servedSerial(t *testing.T, roots *x509.CertPool) *big.Int {
	t.Helper()
	resp, err := s.get(t, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("GET %s: %v", s.url, err)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber
}

// waitServed polls until the server shows the certificate with serial
// want; the deadline only bounds a test that would otherwise hang.
func (s *tlsServer) waitServed(t *testing.T, roots *x509.CertPool, want *big.Int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.servedSerial(t, roots)
		if got.Cmp(want) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still shows serial %s, want %s after rotation", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog polls until the server log contains s.
func (s *tlsServer) waitLog(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(s.log.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q", sub)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// certFiles is a way of putting a cert and key on disk and replacing them.
type certFiles struct {
	name    string
	install func(t *testing.T, l tlstest.Leaf) (cert, key string, replace func(tlstest.Leaf))
}

var layouts = []certFiles{
	{"rewrite the files in place", func(t *testing.T, l tlstest.Leaf) (string, string, func(tlstest.Leaf)) {
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		writeFile(t, cert, l.CertPEM)
		writeFile(t, key, l.KeyPEM)
		return cert, key, func(n tlstest.Leaf) {
			writeFile(t, cert, n.CertPEM)
			writeFile(t, key, n.KeyPEM)
		}
	}},
	{"kubernetes ..data symlink swap", func(t *testing.T, l tlstest.Leaf) (string, string, func(tlstest.Leaf)) {
		v := newSecretVolume(t, map[string][]byte{"tls.crt": l.CertPEM, "tls.key": l.KeyPEM})
		return v.path("tls.crt"), v.path("tls.key"), func(n tlstest.Leaf) {
			v.update(t, map[string][]byte{"tls.crt": n.CertPEM, "tls.key": n.KeyPEM})
		}
	}},
}

func TestRotationPickedUpByRunningServer(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.name, func(t *testing.T) {
			ca := tlstest.NewCA(t, "test CA")
			first, second, third := ca.Issue(t, "first", false), ca.Issue(t, "second", false), ca.Issue(t, "third", false)
			cert, key, replace := layout.install(t, first)
			srv := startTLSServer(t, tlsreload.Config{CertFile: cert, KeyFile: key})
			if got := srv.servedSerial(t, ca.Pool()); got.Cmp(first.Serial) != 0 {
				t.Fatalf("served serial %s, want the first certificate's %s", got, first.Serial)
			}
			replace(second)
			srv.waitServed(t, ca.Pool(), second.Serial)
			replace(third) // and again: the watch survives a swap
			srv.waitServed(t, ca.Pool(), third.Serial)
		})
	}
}

func TestBrokenNewCertificateKeepsTheOldOne(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	good, next := ca.Issue(t, "good", false), ca.Issue(t, "next", false)
	tests := []struct {
		name      string
		cert, key []byte
	}{
		{"garbage certificate", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), good.KeyPEM},
		{"key of another certificate", next.CertPEM, good.KeyPEM},
		{"empty files", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			writeFile(t, cert, good.CertPEM)
			writeFile(t, key, good.KeyPEM)
			srv := startTLSServer(t, tlsreload.Config{CertFile: cert, KeyFile: key})
			writeFile(t, cert, tt.cert)
			writeFile(t, key, tt.key)
			srv.waitLog(t, "still serving the previous certificate")
			if got := srv.servedSerial(t, ca.Pool()); got.Cmp(good.Serial) != 0 {
				t.Fatalf("after a broken update the server shows serial %s, want the old %s", got, good.Serial)
			}
			// A fixed pair afterwards is picked up.
			writeFile(t, cert, next.CertPEM)
			writeFile(t, key, next.KeyPEM)
			srv.waitServed(t, ca.Pool(), next.Serial)
		})
	}
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := tlstest.NewCA(t, "server CA"), tlstest.NewCA(t, "client CA"), tlstest.NewCA(t, "other CA")
	dir := t.TempDir()
	cert, key, cas := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	sl := serverCA.Issue(t, "server", false)
	writeFile(t, cert, sl.CertPEM)
	writeFile(t, key, sl.KeyPEM)
	writeFile(t, cas, clientCA.PEM)
	srv := startTLSServer(t, tlsreload.Config{CertFile: cert, KeyFile: key, ClientCAFile: cas})

	good := clientCA.Issue(t, "alice", true).TLSCert(t)
	foreign := otherCA.Issue(t, "mallory", true).TLSCert(t)
	tests := []struct {
		name   string
		certs  []tls.Certificate
		accept bool
	}{
		{"client certificate from the client CA", []tls.Certificate{good}, true},
		{"no client certificate", nil, false},
		{"client certificate from another CA", []tls.Certificate{foreign}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.get(t, &tls.Config{RootCAs: serverCA.Pool(), Certificates: tt.certs})
			if tt.accept && (err != nil || resp.StatusCode != http.StatusOK) {
				t.Fatalf("want accepted, got %v %v", resp, err)
			}
			if !tt.accept && err == nil {
				t.Fatalf("want the handshake refused, got %s", resp.Status)
			}
		})
	}

	t.Run("client CA bundle reloaded", func(t *testing.T) {
		writeFile(t, cas, otherCA.PEM)
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := srv.get(t, &tls.Config{RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{foreign}})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a certificate of the new client CA is still refused: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := srv.get(t, &tls.Config{RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{good}}); err == nil {
			t.Fatal("a certificate of the replaced client CA is still accepted")
		}
	})
}

func TestProtocols(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	l := ca.Issue(t, "server", false)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, cert, l.CertPEM)
	writeFile(t, key, l.KeyPEM)
	srv := startTLSServer(t, tlsreload.Config{CertFile: cert, KeyFile: key})
	tests := []struct {
		name      string
		min, max  uint16
		wantMajor int // 0: the handshake must fail
	}{
		{"TLS 1.3 negotiates HTTP/2", tls.VersionTLS13, tls.VersionTLS13, 2},
		{"TLS 1.2 negotiates HTTP/2", tls.VersionTLS12, tls.VersionTLS12, 2},
		{"TLS 1.1 refused", tls.VersionTLS10, tls.VersionTLS11, 0},
		{"TLS 1.0 refused", tls.VersionTLS10, tls.VersionTLS10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.get(t, &tls.Config{RootCAs: ca.Pool(), MinVersion: tt.min, MaxVersion: tt.max})
			if tt.wantMajor == 0 {
				if err == nil {
					t.Fatalf("TLS max %x accepted (%s)", tt.max, resp.Proto)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != tt.wantMajor {
				t.Fatalf("negotiated %s, want HTTP/%d", resp.Proto, tt.wantMajor)
			}
		})
	}
}

func TestNewReportsEveryUnreadableFile(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	l := ca.Issue(t, "server", false)
	dir := t.TempDir()
	cert, key, bad := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "bad.pem")
	writeFile(t, cert, l.CertPEM)
	writeFile(t, key, l.KeyPEM)
	writeFile(t, bad, []byte("not pem"))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		cfg     tlsreload.Config
		wantKey []string // FileError keys that must be reported
		missing bool     // the error wraps os.ErrNotExist
	}{
		{"missing cert and key", tlsreload.Config{CertFile: missing, KeyFile: missing + "2"}, []string{"cert", "key"}, true},
		{"missing client CA", tlsreload.Config{CertFile: cert, KeyFile: key, ClientCAFile: missing}, []string{"client_ca"}, true},
		{"client CA without a certificate", tlsreload.Config{CertFile: cert, KeyFile: key, ClientCAFile: bad}, []string{"client_ca"}, false},
		{"key is not a key", tlsreload.Config{CertFile: cert, KeyFile: bad}, []string{"cert"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsreload.New(tt.cfg, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, k := range tt.wantKey {
				if !reportsKey(err, k) {
					t.Errorf("error %q does not report a FileError for %s", err, k)
				}
			}
			if got := errors.Is(err, os.ErrNotExist); got != tt.missing {
				t.Errorf("errors.Is(%q, os.ErrNotExist) = %v, want %v", err, got, tt.missing)
			}
		})
	}
}

// reportsKey finds a *FileError with Key key anywhere in a joined error.
func reportsKey(err error, key string) bool {
	var fe *tlsreload.FileError
	if errors.As(err, &fe) && fe.Key == key {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if reportsKey(e, key) {
				return true
			}
		}
	}
	return false
}

func TestExposed(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{":5000", true},
		{"0.0.0.0:5000", true},
		{"[::]:5000", true},
		{"192.0.2.10:5000", true},
		{"registry.example.com:5000", true},
		{"127.0.0.1:5000", false},
		{"127.8.9.10:5000", false},
		{"[::1]:5000", false},
		{"localhost:5000", false},
		{"[::ffff:127.0.0.1]:5000", false},
	}
	for _, tt := range tests {
		if got := tlsreload.Exposed(tt.addr); got != tt.want {
			t.Errorf("Exposed(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
