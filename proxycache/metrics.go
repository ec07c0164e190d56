package proxycache

import "github.com/prometheus/client_golang/prometheus"

// metrics count what the mirrors answer from the store and what they ask
// upstream: the ratio is the rate-limit saving.
type metrics struct {
	hits     *prometheus.CounterVec
	requests *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_proxycache_hits_total",
			Help: "Mirror pulls answered from the store without fetching, by mirror prefix and kind (manifest, blob).",
		}, []string{"mirror", "kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_proxycache_upstream_requests_total",
			Help: "Requests to upstream registries, by mirror prefix, kind (manifest_head, manifest_get, blob_get) and result (ok, error).",
		}, []string{"mirror", "kind", "result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.hits, m.requests} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) hit(mirror, kind string) { m.hits.WithLabelValues(mirror, kind).Inc() }

func (m *metrics) upstream(mirror, kind string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.requests.WithLabelValues(mirror, kind, result).Inc()
}
