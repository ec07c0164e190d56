package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/proxycache"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
)

// openProxy builds the pull-through cache of cfg.Proxy; nil (mirror
// nothing) without upstreams.
func openProxy(cfg *Config, driver storage.Driver, store locking.Store, logger *slog.Logger, reg prometheus.Registerer) (registry.Mirror, error) {
	if len(cfg.Proxy.Upstreams) == 0 {
		return nil, nil
	}
	c, err := proxycache.New(cfg.Proxy, proxycache.Deps{
		Storage: driver, Locking: store, Logger: logger.With("component", "proxycache"),
		MaxManifestSize: int64(cfg.Registry.MaxManifestSize), Transport: upstreamTransport(), Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	for _, u := range cfg.Proxy.Upstreams {
		logger.Info("pull-through mirror", "prefix", u.Prefix, "url", u.URL, "ttl", u.TTL, "root", u.Root, "authenticated", u.Username != "")
	}
	return c, nil
}

// upstreamTransport dials upstream registries with bounded connection
// setup; bodies may stream as long as proxy.fetch_timeout allows.
func upstreamTransport() http.RoundTripper {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
}
