// Package activity counts the API requests a replica serves and publishes
// the count to state every replica shares (locking.Activity: Redis, or
// the process's own memory), so that garbage collection, usually running
// on another replica, can tell a busy registry from an idle one and yield
// (storage/pace.Yielder).
//
// The request path only increments an atomic counter. A background loop
// sends what accumulated once per interval, so the shared state costs one
// call per replica per interval whatever the traffic, and a slow or dead
// Redis never delays or fails a request: a count that cannot be sent is
// dropped and counted in stratus_activity_dropped_total.
package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is how often the count is published: well inside the
// 2 s window GC reads, so a burst of traffic is seen within a fraction of
// it, at no more than four calls a second per replica.
const DefaultInterval = 250 * time.Millisecond

// Sink receives the counts (locking.Activity's writing half).
type Sink interface {
	AddActivity(ctx context.Context, n int64) error
}

// Options configure a Publisher.
type Options struct {
	// Interval between publications; 0 means DefaultInterval.
	Interval time.Duration
	// Metrics: nil records nothing.
	Registerer prometheus.Registerer
	// Logger: nil discards.
	Logger *slog.Logger
}

// Publisher counts served requests and publishes them to a Sink.
type Publisher struct {
	sink     Sink
	interval time.Duration
	logger   *slog.Logger
	n        atomic.Int64
	// failing is set while publications fail, so a dead Redis is logged
	// once, not every interval.
	failing   atomic.Bool
	published prometheus.Counter
	dropped   prometheus.Counter
}

// New returns a Publisher to sink; call Run to start publishing.
func New(sink Sink, opts Options) (*Publisher, error) {
	if sink == nil {
		return nil, errors.New("activity: a publisher needs a sink")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("activity: negative interval %v", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		sink: sink, interval: opts.Interval, logger: opts.Logger,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "stratus_activity_published_total",
			Help: "Served API requests published to the shared activity count GC yields to."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "stratus_activity_dropped_total",
			Help: "Served API requests whose count could not be published (the shared state was unreachable)."}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{p.published, p.dropped} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("activity metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Served counts one request. It never blocks.
func (p *Publisher) Served() { p.n.Add(1) }

// Run publishes every interval until ctx ends, then publishes what is left
// (bounded by one interval).
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.interval)
			p.Flush(fctx)
			cancel()
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, p.interval)
			p.Flush(fctx)
			cancel()
		}
	}
}

// Flush publishes the requests counted since the last flush, if any. A
// count the sink refuses is dropped, not kept for later: an old count in
// a fresh bucket would make GC yield to traffic that has ended.
func (p *Publisher) Flush(ctx context.Context) {
	n := p.n.Swap(0)
	if n == 0 {
		return
	}
	if err := p.sink.AddActivity(ctx, n); err != nil {
		p.dropped.Add(float64(n))
		if !p.failing.Swap(true) {
			p.logger.Warn("activity: cannot publish the served-request count; dropping it until the shared state answers", "requests", n, "err", err)
		}
		return
	}
	p.published.Add(float64(n))
	if p.failing.Swap(false) {
		p.logger.Info("activity: publishing the served-request count again")
	}
}
