package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/internal/tlsreload"
)

// metricsShutdownTimeout bounds the drain of the metrics listener, which
// closes after the public one so that a scrape during the drain works.
const metricsShutdownTimeout = 2 * time.Second

// servers are the public listener and the optional metrics listener.
type servers struct {
	cfg     *Config
	logger  *slog.Logger
	public  *http.Server
	ln      net.Listener
	metrics *http.Server // nil with metrics.addr: off
	mln     net.Listener
}

// newServers binds both listeners, so that a port in use fails the start
// before anything is served.
func newServers(ctx context.Context, cfg *Config, reg http.Handler, ready http.Handler, obs *observability, proxies []netip.Prefix, logger *slog.Logger) (*servers, error) {
	var err error
	s := &servers{cfg: cfg, logger: logger}
	s.public = &http.Server{
		Handler:           publicHandler(cfg, reg, ready, obs, proxies, logger),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// Requests keep their context through SIGTERM: the drain is
		// bounded by http.shutdown_timeout, not by cancelling them.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.tlsEnabled() {
		reloader, err := tlsreload.New(cfg.tlsFiles(), logger.With("component", "tls"))
		if err != nil {
			return nil, fmt.Errorf("http.tls: %w", err)
		}
		// The watch ends with serve's context; the last certificate loaded
		// keeps serving through the drain.
		go reloader.Watch(ctx)
		s.public.TLSConfig = reloader.TLSConfig()
	}
	if s.ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return nil, fmt.Errorf("http.addr: %w", err)
	}
	if !cfg.tlsEnabled() && tlsreload.Exposed(s.ln.Addr().String()) {
		logger.Warn("plain HTTP on a non-loopback address: credentials and content cross the network unencrypted; set http.tls.cert and http.tls.key, or terminate TLS in front and bind http.addr to loopback",
			"addr", s.ln.Addr().String())
	}
	if cfg.Metrics.Addr == metricsOff {
		return s, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", obs.handler(logger))
	s.metrics = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if s.mln, err = net.Listen("tcp", cfg.Metrics.Addr); err != nil {
		s.ln.Close()
		return nil, fmt.Errorf("metrics.addr: %w (set metrics.addr to a free port, or to %q)", err, metricsOff)
	}
	return s, nil
}

// publicHandler routes the probes and, if configured, /metrics, and sends
// everything else through the middleware to reg (the registry, behind its
// rate limit). No
// http.ServeMux in front of the registry: it would clean paths and answer
// "/v2/a/../b" with a redirect, where a registry must answer NAME_INVALID
// and store nothing. Probes and scrapes bypass the access log: they come
// every few seconds and say nothing about clients.
func publicHandler(cfg *Config, reg http.Handler, ready http.Handler, obs *observability, proxies []netip.Prefix, logger *slog.Logger) http.Handler {
	api := httpmw.Chain(httpmw.Options{Logger: logger, TrustedProxies: proxies, Route: routeOf, Metrics: obs.http, Tracer: obs.tracing.httpTracer()})(countUploads(obs.uploads, reg))
	var metrics http.Handler = http.NotFoundHandler()
	if cfg.Metrics.MainPort {
		metrics = obs.handler(logger)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/readyz":
			ready.ServeHTTP(w, r)
		case "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// start serves both listeners; the channel reports the first server that
// stops (http.ErrServerClosed after a shutdown).
func (s *servers) start() <-chan error {
	errc := make(chan error, 2)
	tlsOn := s.public.TLSConfig != nil
	go func() {
		if tlsOn {
			// The certificate comes from TLSConfig.GetCertificate, which
			// follows file changes; ServeTLS keeps "h2" in NextProtos.
			errc <- s.public.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.public.Serve(s.ln)
	}()
	s.logger.Info("stratus listening", "addr", s.ln.Addr().String(), "tls", tlsOn,
		"storage", s.cfg.Storage.Driver, "sessions", sessionBackend(s.cfg), "version", version)
	if s.metrics != nil {
		go func() {
			if err := s.metrics.Serve(s.mln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		s.logger.Info("metrics endpoint up", "metrics_addr", s.mln.Addr().String(), "path", "/metrics")
	}
	return errc
}

// close stops both servers at once, after a failure.
func (s *servers) close() {
	s.public.Close()
	if s.metrics != nil {
		s.metrics.Close()
	}
}

// drain is the SIGTERM sequence: fail /readyz, wait shutdown_delay so load
// balancers notice, stop accepting, let in-flight requests finish for at
// most shutdown_timeout (then cut them), and stop the metrics listener.
func (s *servers) drain(ready *readyChecker, errc <-chan error) error {
	ready.drain()
	s.logger.Info("shutting down: /readyz fails from now on",
		"shutdown_delay", s.cfg.HTTP.ShutdownDelay, "drain_timeout", s.cfg.HTTP.ShutdownTimeout)
	time.Sleep(s.cfg.HTTP.ShutdownDelay)
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	err := s.public.Shutdown(sctx)
	if err != nil {
		s.public.Close()
		err = fmt.Errorf("shutdown: in-flight requests still running after http.shutdown_timeout (%s) were cut: %w", s.cfg.HTTP.ShutdownTimeout, err)
	} else if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	s.logger.Info("public listener drained", "took", time.Since(start).Round(time.Millisecond), "clean", err == nil)
	if s.metrics != nil {
		mctx, mcancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer mcancel()
		if merr := s.metrics.Shutdown(mctx); merr != nil {
			s.metrics.Close()
		}
	}
	return err
}
