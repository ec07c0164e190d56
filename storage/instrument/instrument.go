// Package instrument wraps a storage.Driver with Prometheus metrics:
// operation latency and failures by driver and operation, and the bytes
// read from and written to the store. Metrics come from this wrapper, never
// from code inside a driver, so every backend reports the same series.
//
// The wrapper implements storage.Driver and exactly the optional
// capabilities (storage.URLSigner, storage.MultipartReaper) of the driver it
// wraps, so callers that look for a capability by type assertion find it
// if and only if the backend has it.
//
// Not failures: storage.ErrNotFound and storage.ErrExists (answers, not
// faults: a missing key, a lost create-only race) and context.Canceled
// (the caller went away). Everything else, deadlines included, counts.
package instrument

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/driverwrap"
)

// Operation names, the values of the "op" label.
const (
	OpStat            = "stat"
	OpRead            = "read" // from Reader until Close
	OpPut             = "put"
	OpList            = "list"
	OpDelete          = "delete"
	OpDeleteBatch     = "delete_batch"
	OpNewMultipart    = "multipart_new"
	OpResumeMultipart = "multipart_resume"
	OpAppend          = "multipart_append"
	OpCommit          = "multipart_commit"
	OpAbort           = "multipart_abort"
	OpSignedURL       = "signed_url"
	OpAbortStale      = "abort_stale"
)

// Metrics are the storage series, registered once and shared by every
// driver wrapped with them (the "driver" label tells them apart).
type Metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	read     *prometheus.CounterVec
	written  *prometheus.CounterVec
}

// NewMetrics creates the storage series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stratus_storage_operation_duration_seconds",
			Help: "Latency of storage driver operations; reads are timed from open to Close.",
			// From a local stat (~50µs) to a multi-GiB streamed read.
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 11),
		}, []string{"driver", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_storage_errors_total",
			Help: "Storage driver operations that failed (not found, lost create-only races and cancelled requests excluded).",
		}, []string{"driver", "op"}),
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_storage_read_bytes_total",
			Help: "Bytes read from the object store.",
		}, []string{"driver"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stratus_storage_written_bytes_total",
			Help: "Bytes written to the object store by successful puts and multipart appends.",
		}, []string{"driver"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors, m.read, m.written} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("storage metrics: %w", err)
		}
	}
	return m, nil
}

// Wrap returns d instrumented with m. The result implements the same
// optional capabilities as d, and no others.
func (m *Metrics) Wrap(d storage.Driver) storage.Driver {
	name := d.Name()
	b := &driver{
		next:    d,
		m:       m,
		name:    name,
		read:    m.read.WithLabelValues(name),
		written: m.written.WithLabelValues(name),
	}
	return driverwrap.Compose(b, d, driverwrap.Hooks{SignedURL: b.signedURL, AbortStale: b.abortStale})
}

// observe records one finished operation.
func (m *Metrics) observe(driver, op string, start time.Time, err error) {
	m.duration.WithLabelValues(driver, op).Observe(time.Since(start).Seconds())
	if Failure(err) {
		m.errors.WithLabelValues(driver, op).Inc()
	}
}

// Failure reports whether err counts as a failed operation: not nil, and
// not one of the answers that say nothing about the store's health.
func Failure(err error) bool {
	return err != nil &&
		!errors.Is(err, storage.ErrNotFound) &&
		!errors.Is(err, storage.ErrExists) &&
		!errors.Is(err, context.Canceled)
}
