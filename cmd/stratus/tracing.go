package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"

	"github.com/stratus-registry/stratus/locking"
	ltracing "github.com/stratus-registry/stratus/locking/tracing"
	"github.com/stratus-registry/stratus/storage"
	stracing "github.com/stratus-registry/stratus/storage/tracing"
)

// TracingConfig is the optional OpenTelemetry tracing (OTLP over HTTP).
// Off by default; off, nothing of it is installed.
type TracingConfig struct {
	Enabled bool `yaml:"enabled"`
	// Endpoint is the collector's OTLP/HTTP URL. Without a path (or with
	// "/") spans go to /v1/traces under it; with one, to that path. Empty:
	// the SDK's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _ENDPOINT, else
	// https://localhost:4318.
	Endpoint string `yaml:"endpoint"`
	// Insecure allows plain HTTP: required for an http:// endpoint, an
	// error with an https:// one.
	Insecure bool `yaml:"insecure"`
	// Headers are sent with every export (collector API keys). Given, they
	// replace OTEL_EXPORTER_OTLP_HEADERS.
	Headers Headers `yaml:"headers"`
	// SampleRatio is the share of new traces recorded, 0..1 (default 1).
	// A request carrying a traceparent follows its sampled flag.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute (default stratus).
	ServiceName string `yaml:"service_name"`
}

// Headers are name=value pairs: a YAML mapping, or "a=1,b=2" from
// STRATUS_TRACING_HEADERS and --set.
type Headers map[string]string

// UnmarshalText parses the comma-separated form.
func (h *Headers) UnmarshalText(b []byte) error {
	out := Headers{}
	for _, item := range strings.Split(string(b), ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("header %q: want name=value", strings.TrimSpace(name))
		}
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	*h = out
	return nil
}

const (
	defaultServiceName = "stratus"
	otlpTracesPath     = "/v1/traces"
	// tracingShutdownTimeout bounds the final flush of buffered spans.
	tracingShutdownTimeout = 5 * time.Second
)

func (c *TracingConfig) setDefaults() {
	if !c.Enabled {
		return
	}
	if c.SampleRatio == nil {
		one := 1.0
		c.SampleRatio = &one
	}
	if c.ServiceName == "" {
		c.ServiceName = defaultServiceName
	}
}

// validate checks every key that is set, on or off: a bad value waiting
// for the day tracing is switched on is still a mistake.
func (c *TracingConfig) validate() error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			errs = append(errs, fmt.Errorf("tracing.endpoint: %q is not an http:// or https:// URL", c.Endpoint))
		case u.Scheme == "http" && !c.Insecure:
			errs = append(errs, fmt.Errorf("tracing.endpoint: %q is plain HTTP; set tracing.insecure: true to send spans unencrypted, or use https://", c.Endpoint))
		case u.Scheme == "https" && c.Insecure:
			errs = append(errs, fmt.Errorf("tracing.insecure: true contradicts the https:// tracing.endpoint %q", c.Endpoint))
		}
	}
	if r := c.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio: %v is not between 0 and 1", *r))
	}
	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !httpguts.ValidHeaderFieldName(name) {
			errs = append(errs, fmt.Errorf("tracing.headers: %q is not a valid header name", name))
		} else if !httpguts.ValidHeaderFieldValue(c.Headers[name]) {
			errs = append(errs, fmt.Errorf("tracing.headers.%s: the value has characters a header cannot carry", name))
		}
	}
	return errors.Join(errs...)
}

// tracing is the process's tracer provider. A nil *tracing is tracing
// off: every method then returns its argument unchanged, so nothing is
// wrapped and nothing costs.
type tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// openTracing starts the exporter and provider, or returns nil when
// tracing is off. The provider is kept off otel's global: the process
// passes its tracer to what it wraps, like its metrics registry.
func openTracing(ctx context.Context, cfg TracingConfig, logger *slog.Logger) (*tracing, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx, exporterOptions(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", version),
	)
	tp := sdktrace.NewTracerProvider(
		// The batcher's queue is bounded (2048 spans): a slow collector
		// drops spans, it never grows memory or blocks requests.
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*cfg.SampleRatio))),
	)
	logger.Info("tracing on", "endpoint", endpointForLog(cfg), "sample_ratio", *cfg.SampleRatio, "service_name", cfg.ServiceName)
	return &tracing{provider: tp, tracer: tp.Tracer("github.com/stratus-registry/stratus")}, nil
}

// exporterOptions turns the configuration into exporter options; what is
// left unset falls back to the OTEL_EXPORTER_OTLP_* environment.
func exporterOptions(cfg TracingConfig) []otlptracehttp.Option {
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		u, _ := url.Parse(cfg.Endpoint) // validated
		if u.Path == "" || u.Path == "/" {
			u.Path = otlpTracesPath
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	} else if cfg.Insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	return opts
}

// endpointForLog never logs headers (they carry API keys).
func endpointForLog(cfg TracingConfig) string {
	if cfg.Endpoint == "" {
		return "from OTEL_EXPORTER_OTLP_* or https://localhost:4318"
	}
	return cfg.Endpoint
}

// storage returns d traced, or d itself with tracing off.
func (t *tracing) storage(d storage.Driver) storage.Driver {
	if t == nil {
		return d
	}
	return stracing.Wrap(d, t.tracer)
}

// locking returns s traced, or s itself with tracing off.
func (t *tracing) locking(s locking.Store, backend string) locking.Store {
	if t == nil {
		return s
	}
	return ltracing.Wrap(s, backend, t.tracer)
}

// httpTracer is the tracer for the request spans; nil with tracing off,
// which installs no tracing middleware.
func (t *tracing) httpTracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tracer
}

// shutdown flushes the spans still buffered and stops the exporter.
func (t *tracing) shutdown(logger *slog.Logger) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		logger.Warn("tracing: spans not flushed at shutdown", "err", err)
	}
}
