package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stratus-registry/stratus/httpmw"
	linstrument "github.com/stratus-registry/stratus/locking/instrument"
	"github.com/stratus-registry/stratus/ratelimit"
	"github.com/stratus-registry/stratus/registry"
	sinstrument "github.com/stratus-registry/stratus/storage/instrument"
)

// observability holds this process's metrics registry (no global default
// registry: tests and several servers in one process never share series)
// and the instruments each layer records into.
type observability struct {
	registry *prometheus.Registry
	storage  *sinstrument.Metrics
	locking  *linstrument.Metrics
	http     *httpmw.Metrics
	uploads  prometheus.Gauge
	limits   *ratelimit.Metrics
}

func newObservability() (*observability, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	o := &observability{registry: reg}
	var err error
	if o.storage, err = sinstrument.NewMetrics(reg); err != nil {
		return nil, err
	}
	if o.locking, err = linstrument.NewMetrics(reg); err != nil {
		return nil, err
	}
	if o.http, err = httpmw.NewMetrics(reg); err != nil {
		return nil, err
	}
	if o.uploads, err = newUploadsActive(reg); err != nil {
		return nil, err
	}
	if o.limits, err = ratelimit.NewMetrics(reg); err != nil {
		return nil, err
	}
	return o, nil
}

// watchRegistry exports the registry's own counters (GC, pins).
func (o *observability) watchRegistry(reg *registry.Registry) error {
	if err := o.registry.Register(gcCollector{reg: reg}); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// handler serves the Prometheus exposition of every series.
func (o *observability) handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      o.registry, // promhttp's own scrape counters
	})
}

// gcMetric is one registry counter exported by gcCollector.
type gcMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(registry.Metrics) float64
}

var gcMetrics = []gcMetric{
	{prometheus.NewDesc("stratus_pins_refused_total", "Pins refused because GC was deleting the digest.", nil, nil),
		prometheus.CounterValue, func(m registry.Metrics) float64 { return float64(m.PinsRefused) }},
	{prometheus.NewDesc("stratus_gc_claims_refused_total", "GC claims refused because a request had pinned the object.", nil, nil),
		prometheus.CounterValue, func(m registry.Metrics) float64 { return float64(m.ClaimsRefused) }},
	{prometheus.NewDesc("stratus_gc_runs_total", "GC passes run by this replica.", nil, nil),
		prometheus.CounterValue, func(m registry.Metrics) float64 { return float64(m.GCRuns) }},
	{prometheus.NewDesc("stratus_gc_failures_total", "GC passes that ended with an error.", nil, nil),
		prometheus.CounterValue, func(m registry.Metrics) float64 { return float64(m.GCFailures) }},
	{prometheus.NewDesc("stratus_gc_objects_deleted_total", "Objects deleted by GC.", nil, nil),
		prometheus.CounterValue, func(m registry.Metrics) float64 { return float64(m.GCObjectsDelete) }},
	{prometheus.NewDesc("stratus_gc_bytes_reclaimed_total", "Blob bytes reclaimed by GC.", nil, nil),
		prometheus.CounterValue, func(m registry.Metrics) float64 { return float64(m.GCBytesReclaim) }},
	{prometheus.NewDesc("stratus_gc_last_duration_seconds", "Duration of the last GC pass.", nil, nil),
		prometheus.GaugeValue, func(m registry.Metrics) float64 { return m.GCLastDuration.Seconds() }},
}

// gcCollector reads registry.Metrics() at scrape time, so the registry
// keeps its own counters and knows nothing about Prometheus.
type gcCollector struct{ reg *registry.Registry }

func (c gcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range gcMetrics {
		ch <- m.desc
	}
}

func (c gcCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.reg.Metrics()
	for _, m := range gcMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(snap))
	}
}

// routeOf resolves a request with the registry's own router.
func routeOf(r *http.Request) httpmw.Route {
	tmpl, repo, ref := registry.RouteInfo(r.URL.EscapedPath())
	return httpmw.Route{Template: tmpl, Repository: repo, Reference: ref}
}
