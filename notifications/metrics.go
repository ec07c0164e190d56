package notifications

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the webhook series. A nil *Metrics records nothing.
type Metrics struct {
	enqueued   *prometheus.CounterVec
	enqueueErr prometheus.Counter
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	dropped    *prometheus.CounterVec
	depth      *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
}

// Delivery results (label "result" of stratus_webhook_deliveries_total).
const (
	resultSuccess      = "success"
	resultHTTPError    = "http_error"
	resultNetworkError = "network_error"
)

// Drop reasons (label "reason" of stratus_webhook_dropped_total).
const (
	dropMaxAge   = "max_age"
	dropOverflow = "overflow"
	dropCorrupt  = "corrupt"
)

// NewMetrics registers the webhook series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_webhook_events_enqueued_total", Help: "Events queued for delivery, by endpoint and action.",
		}, []string{"endpoint", "action"}),
		enqueueErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stratus_webhook_enqueue_failures_total", Help: "Events lost because the queue (Redis) refused them.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_webhook_deliveries_total", Help: "Delivery attempts, by endpoint and result (success, http_error, network_error).",
		}, []string{"endpoint", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stratus_webhook_delivery_duration_seconds", Help: "Duration of one delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}, []string{"endpoint"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_webhook_dropped_total", Help: "Events given up on, by endpoint and reason (max_age, overflow, corrupt).",
		}, []string{"endpoint", "reason"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stratus_webhook_queue_depth", Help: "Undelivered events of the endpoint (shared by all replicas with Redis).",
		}, []string{"endpoint"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stratus_webhook_oldest_event_age_seconds", Help: "Age of the oldest undelivered event of the endpoint; 0 when none.",
		}, []string{"endpoint"}),
	}
	for _, c := range []prometheus.Collector{m.enqueued, m.enqueueErr, m.deliveries, m.latency, m.dropped, m.depth, m.oldest} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook metrics: %w", err)
		}
	}
	return m, nil
}
