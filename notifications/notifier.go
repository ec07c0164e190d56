package notifications

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	randv2 "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options are the services and identity a Notifier runs with.
type Options struct {
	// Redis, if set, holds the queue (shared by every replica); nil keeps
	// it in this process.
	Redis goredis.UniversalClient
	// KeyPrefix namespaces the Redis keys (redis.key_prefix).
	KeyPrefix string
	// InstanceID names this replica: its consumer in the streams' group and
	// source.instanceID of its events. It must be unique per process.
	InstanceID string
	// SourceAddr is source.addr of the events (host:port of the replica).
	SourceAddr string
	Logger     *slog.Logger
	Metrics    *Metrics
	// HTTPClient sends the deliveries; nil: a client that follows no
	// redirects (a 3xx is not a delivery).
	HTTPClient *http.Client
}

// Notifier filters, queues and delivers events.
type Notifier struct {
	cfg     Config
	opts    Options
	q       queue
	logger  *slog.Logger
	metrics *Metrics
	client  *http.Client
	now     func() time.Time
	rnd     func() float64
	// refusedUntil (Unix nanoseconds): after the queue refused an event,
	// events are counted as lost without trying until then, so that a
	// Redis outage costs the request path one timeout per pause, not one
	// per request (pulls go on during an outage and emit events).
	refusedUntil atomic.Int64
}

const (
	// enqueueTimeout bounds the enqueue of one event on the request path.
	enqueueTimeout = 2 * time.Second
	// refusedPause is how long enqueueing pauses after a failure.
	refusedPause = time.Second
)

// New validates cfg (with defaults applied) and returns a notifier; Run
// starts its delivery workers.
func New(cfg Config, o Options) (*Notifier, error) {
	cfg.SetDefaults()
	if err := cfg.Validate("notifications"); err != nil {
		return nil, err
	}
	if o.InstanceID == "" {
		return nil, errors.New("notifications: an instance id is required")
	}
	n := &Notifier{cfg: cfg, opts: o, logger: o.Logger, metrics: o.Metrics, client: o.HTTPClient, now: time.Now, rnd: randv2.Float64}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	if n.client == nil {
		n.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Redis != nil {
		n.q = newRedisQueue(o.Redis, o.KeyPrefix, o.InstanceID, cfg.StreamMaxLength, cfg.ClaimIdle)
	} else {
		n.q = newMemQueue(cfg.StreamMaxLength, n.now)
	}
	return n, nil
}

// Emit queues the event for every endpoint whose filters it passes. It
// fills in the id, the timestamp and the source. A queue failure is
// logged and counted, not returned: the caller has stored what the event
// announces, and its answer must not depend on the webhooks.
func (n *Notifier) Emit(ctx context.Context, kind Kind, e Event) {
	if kind == KindBlob && e.Action == ActionPush && !n.cfg.BlobPush {
		return
	}
	if e.ID == "" {
		e.ID = newEventID()
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = n.now().UTC()
	}
	e.Source = Source{Addr: n.opts.SourceAddr, InstanceID: n.opts.InstanceID}
	q := queued{Kind: kind, Event: e}
	var items []item
	for i := range n.cfg.Endpoints {
		if ep := &n.cfg.Endpoints[i]; ep.Filters.matches(&q) {
			items = append(items, item{endpoint: ep.Name})
		}
	}
	if len(items) == 0 {
		return
	}
	data, err := json.Marshal(q)
	if err != nil {
		n.logger.Error("webhooks: encoding an event", "err", err)
		return
	}
	for i := range items {
		items[i].data = data
	}
	if n.now().UnixNano() < n.refusedUntil.Load() {
		n.lost(e, errors.New("queue unavailable (paused after a failure)"))
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	dropped, err := n.q.add(actx, items)
	if err != nil {
		n.refusedUntil.Store(n.now().Add(refusedPause).UnixNano())
		n.lost(e, err)
		return
	}
	if n.metrics == nil {
		return
	}
	for i, it := range items {
		n.metrics.enqueued.WithLabelValues(it.endpoint, string(e.Action)).Inc()
		if dropped[i] > 0 {
			n.metrics.dropped.WithLabelValues(it.endpoint, dropOverflow).Add(float64(dropped[i]))
		}
	}
}

// lost counts an event the queue did not take.
func (n *Notifier) lost(e Event, err error) {
	n.logger.Warn("webhooks: event lost, the queue refused it", "id", e.ID, "action", e.Action, "repository", e.Target.Repository, "err", err)
	if n.metrics != nil {
		n.metrics.enqueueErr.Inc()
	}
}

// Run delivers until ctx ends: one worker per endpoint. On return every
// worker has finished or released its in-flight delivery.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range n.cfg.Endpoints {
		w := &worker{n: n, ep: &n.cfg.Endpoints[i]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	if err := n.q.close(context.WithoutCancel(ctx)); err != nil {
		n.logger.Warn("webhooks: closing the queue", "err", err)
	}
}

// newEventID is a random (version 4) UUID.
func newEventID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
}
