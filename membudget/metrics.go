package membudget

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is an Observer that exports the budget on a Prometheus registry.
type Metrics struct {
	reserved prometheus.Gauge
	refused  prometheus.Counter
}

// NewMetrics registers the budget's metrics (its size too) on reg.
func NewMetrics(reg prometheus.Registerer, size int64) (*Metrics, error) {
	m := &Metrics{
		reserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stratus_memory_budget_reserved_bytes", Help: "Bytes of buffers reserved from limits.memory.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stratus_memory_budget_refused_total", Help: "Requests answered 503 because limits.memory stayed full for limits.memory_wait.",
		}),
	}
	sizeGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stratus_memory_budget_bytes", Help: "The configured limits.memory.",
	})
	sizeGauge.Set(float64(size))
	for _, c := range []prometheus.Collector{m.reserved, m.refused, sizeGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("membudget metrics: %w", err)
		}
	}
	return m, nil
}

// Reserved implements Observer.
func (m *Metrics) Reserved(n int64) { m.reserved.Add(float64(n)) }

// Refused implements Observer.
func (m *Metrics) Refused() { m.refused.Inc() }
