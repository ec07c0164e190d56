package main

import (
	"errors"
	"fmt"

	"github.com/stratus-registry/stratus/internal/tlsreload"
)

// tlsEnabled: TLS is on when http.tls.cert and http.tls.key are set.
func (c *Config) tlsEnabled() bool { return c.HTTP.TLS.Cert != "" && c.HTTP.TLS.Key != "" }

func (c *Config) tlsFiles() tlsreload.Config {
	t := c.HTTP.TLS
	return tlsreload.Config{CertFile: t.Cert, KeyFile: t.Key, ClientCAFile: t.ClientCA}
}

// validateTLS checks that the http.tls keys go together and reads the
// files, so that a wrong path fails `config check` and startup, named by
// its key, rather than the first handshake.
func (c *Config) validateTLS() error {
	t := c.HTTP.TLS
	switch {
	case (t.Cert == "") != (t.Key == ""):
		return errors.New("http.tls: cert and key must be set together")
	case t.Cert == "":
		if t.ClientCA != "" {
			return errors.New("http.tls.client_ca: mutual TLS needs http.tls.cert and http.tls.key")
		}
		return nil
	}
	err := tlsreload.Check(c.tlsFiles())
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range flattenErrors(err) {
		var fe *tlsreload.FileError
		if errors.As(e, &fe) {
			out = append(out, fmt.Errorf("http.tls.%s: %s: %w", fe.Key, fe.Path, fe.Err))
			continue
		}
		out = append(out, fmt.Errorf("http.tls: %w", e))
	}
	return errors.Join(out...)
}

// flattenErrors lists the members of a joined error (or err itself).
func flattenErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}
