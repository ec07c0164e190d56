package ratelimit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the limits did, by limit kind ("ip", "user",
// "uploads_per_repository").
type Metrics struct {
	rejections *prometheus.CounterVec
	errors     *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_ratelimit_rejections_total",
			Help: "Requests answered 429 by a limit, by limit kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_ratelimit_errors_total",
			Help: "Limiter failures (Redis unreachable); the request was let through (fail open).",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.rejections, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ratelimit metrics: %w", err)
		}
	}
	return m, nil
}

// Rejected counts one 429 of limit kind.
func (m *Metrics) Rejected(kind string) {
	if m != nil {
		m.rejections.WithLabelValues(kind).Inc()
	}
}

// Failed counts one limiter failure of limit kind.
func (m *Metrics) Failed(kind string) {
	if m != nil {
		m.errors.WithLabelValues(kind).Inc()
	}
}
