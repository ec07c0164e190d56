// Package tlsreload serves TLS from certificate files that change under a
// running process (cert-manager rotation, a Kubernetes Secret update) and
// builds the server's tls.Config: TLS 1.2 at least, HTTP/2 offered by ALPN,
// and, with a client CA bundle, mutual TLS.
//
// The files' parent directories are watched rather than the files: a
// Kubernetes Secret volume replaces its files by swapping a "..data"
// symlink to a new directory, which changes neither the watched file's
// inode nor sends an event on it, only on the directory. Any event in a
// watched directory re-reads every configured path (following symlinks
// afresh) after a short debounce, so a cert and key written one after the
// other are loaded as a pair. A new pair that does not load (half written,
// key not matching) is logged and the previous pair keeps serving.
package tlsreload

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a burst of file events must be quiet before
// the files are read again.
const DefaultDebounce = 250 * time.Millisecond

// Config names the files. CertFile and KeyFile are required; ClientCAFile,
// a PEM bundle, turns on mutual TLS.
type Config struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
	// Debounce: 0 means DefaultDebounce.
	Debounce time.Duration
}

// FileError is a file that cannot be read or parsed; Key is the
// configuration role of the file ("cert", "key", "client_ca"), so that a
// caller can name its own configuration key.
type FileError struct {
	Key  string
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.Key, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// material is one loaded generation of the files.
type material struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil without a client CA
	// raw is what was read, to tell a real change from an unrelated event
	// in the directory.
	raw [3][]byte
}

// Reloader holds the current certificate (and client CA pool) and swaps
// them when the files change.
type Reloader struct {
	cfg     Config
	logger  *slog.Logger
	current atomic.Pointer[material]
	watcher *fsnotify.Watcher
}

// New loads the files (any failure is a *FileError) and starts watching
// their directories; Watch must run for changes to be picked up.
func New(cfg Config, logger *slog.Logger) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("tlsreload: cert and key files are required")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg, logger: logger}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current.Store(m)
	if r.watcher, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("tlsreload: %w", err)
	}
	for _, dir := range r.dirs() {
		if err := r.watcher.Add(dir); err != nil {
			r.watcher.Close()
			return nil, fmt.Errorf("tlsreload: watching %s: %w", dir, err)
		}
	}
	return r, nil
}

// dirs are the distinct parent directories of the configured files.
func (r *Reloader) dirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range []string{r.cfg.CertFile, r.cfg.KeyFile, r.cfg.ClientCAFile} {
		if p == "" {
			continue
		}
		d := filepath.Dir(p)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// load reads and parses every file.
func (r *Reloader) load() (*material, error) {
	var m material
	var errs []error
	read := func(i int, key, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, &FileError{Key: key, Path: path, Err: err})
		}
		m.raw[i] = b
	}
	read(0, "cert", r.cfg.CertFile)
	read(1, "key", r.cfg.KeyFile)
	if r.cfg.ClientCAFile != "" {
		read(2, "client_ca", r.cfg.ClientCAFile)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(m.raw[0], m.raw[1])
	if err != nil {
		return nil, &FileError{Key: "cert", Path: r.cfg.CertFile, Err: fmt.Errorf("with key %s: %w", r.cfg.KeyFile, err)}
	}
	m.cert = &cert
	if r.cfg.ClientCAFile != "" {
		m.clientCAs = x509.NewCertPool()
		if !m.clientCAs.AppendCertsFromPEM(m.raw[2]) {
			return nil, &FileError{Key: "client_ca", Path: r.cfg.ClientCAFile, Err: errors.New("no PEM certificate in the file")}
		}
	}
	return &m, nil
}

// Watch reloads on file changes until ctx is done, then stops watching.
func (r *Reloader) Watch(ctx context.Context) {
	defer r.watcher.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-r.watcher.Events:
			if !ok {
				return
			}
			r.logger.Debug("tls files: directory event", "event", ev.String())
			timer.Reset(r.cfg.Debounce)
		case err, ok := <-r.watcher.Errors:
			if !ok {
				return
			}
			// An overflow drops events: re-read to be sure.
			r.logger.Warn("tls files: watch error; re-reading the files", "err", err)
			timer.Reset(r.cfg.Debounce)
		case <-timer.C:
			r.Reload()
		}
	}
}

// Reload reads the files now. It keeps the current pair when the new
// files do not load, and reports whether anything changed.
func (r *Reloader) Reload() bool {
	m, err := r.load()
	if err != nil {
		r.logger.Error("tls files changed but do not load; still serving the previous certificate", "err", err)
		return false
	}
	old := r.current.Load()
	if bytes.Equal(old.raw[0], m.raw[0]) && bytes.Equal(old.raw[1], m.raw[1]) && bytes.Equal(old.raw[2], m.raw[2]) {
		return false
	}
	r.current.Store(m)
	attrs := []any{"cert", r.cfg.CertFile}
	if leaf := m.cert.Leaf; leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC())
	}
	if r.cfg.ClientCAFile != "" {
		attrs = append(attrs, "client_ca", r.cfg.ClientCAFile)
	}
	r.logger.Info("tls certificate reloaded", attrs...)
	return true
}

// Certificate is the pair being served now.
func (r *Reloader) Certificate() *tls.Certificate { return r.current.Load().cert }

// TLSConfig is the server configuration: the current certificate on every
// handshake, TLS 1.2 or newer, "h2" before "http/1.1" in ALPN (a custom
// TLSConfig on an http.Server otherwise risks losing HTTP/2), and with a
// client CA a verified client certificate required from every client.
func (r *Reloader) TLSConfig() *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.current.Load().cert, nil
		},
	}
	if r.cfg.ClientCAFile == "" {
		return base
	}
	base.ClientAuth = tls.RequireAndVerifyClientCert
	base.ClientCAs = r.current.Load().clientCAs
	// The CA pool is part of the config, not of a callback, so each
	// handshake gets a config carrying the pool current at that moment.
	perConn := base.Clone()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := perConn.Clone()
		c.ClientCAs = r.current.Load().clientCAs
		return c, nil
	}
	return base
}

// Check reads and parses the files once, without watching, so that a
// configuration check reports a missing or broken file before a server
// starts. Failures are *FileError values, joined.
func Check(cfg Config) error {
	r := &Reloader{cfg: cfg}
	_, err := r.load()
	return err
}
