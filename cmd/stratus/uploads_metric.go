package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/registry"
)

// newUploadsActive registers stratus_upload_sessions_active: the upload
// sessions with a request streaming data on this replica right now
// (PATCH or PUT of a session, POST of a monolithic upload). A session
// lives in the shared store and any replica may take its next chunk, so
// the per-replica figure is what is being written here; the sum over
// replicas is the fleet's uploads in progress. Sessions idle between two
// chunks are in no replica's figure.
func newUploadsActive(reg prometheus.Registerer) (prometheus.Gauge, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stratus_upload_sessions_active",
		Help: "Upload sessions with a request streaming data on this replica (PATCH/PUT of a session, monolithic POST).",
	})
	if err := reg.Register(g); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return g, nil
}

// countUploads keeps the gauge while an upload request runs; it reads the
// route with the registry's own router, so nothing in the registry
// changes for it.
func countUploads(g prometheus.Gauge, next http.Handler) http.Handler {
	if g == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUploadWrite(r) {
			g.Inc()
			defer g.Dec()
		}
		next.ServeHTTP(w, r)
	})
}

func isUploadWrite(r *http.Request) bool {
	tmpl, _, _ := registry.RouteInfo(r.URL.EscapedPath())
	switch tmpl {
	case registry.RouteUpload:
		return r.Method == http.MethodPatch || r.Method == http.MethodPut
	case registry.RouteUploadStart:
		return r.Method == http.MethodPost && r.URL.Query().Get("digest") != ""
	}
	return false
}
