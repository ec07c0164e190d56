package httpmw

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HTTP request series. Labels are bounded: the route
// template (never the raw path), a known method or "OTHER", the status.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	in, out  *prometheus.CounterVec
	inFlight prometheus.Gauge
}

// NewMetrics creates the series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"route", "method"}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stratus_http_request_duration_seconds",
			Help: "Time from the request's arrival to the end of the answer, by route template and method.",
			// 1 ms to ~17 min: a tag list and a multi-GiB layer pull alike.
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 11),
		}, labels),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_http_request_bytes_total",
			Help: "Request body bytes read, by route template and method.",
		}, labels),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_http_response_bytes_total",
			Help: "Response body bytes written, by route template and method.",
		}, labels),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stratus_http_requests_in_flight",
			Help: "Requests being served now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.in, m.out, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("http metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) record(route, method string, status int, took time.Duration, in, out int64) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(took.Seconds())
	m.in.WithLabelValues(route, method).Add(float64(in))
	m.out.WithLabelValues(route, method).Add(float64(out))
}

// methodLabel keeps the label set bounded whatever a client sends.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
