package notifications

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// worker delivers one endpoint's queue, one entry at a time: a failing
// entry is retried with backoff before the next is read, so a dead
// endpoint costs one pending entry per replica and nothing more.
type worker struct {
	n  *Notifier
	ep *Endpoint
	// failing is set while deliveries fail, so that a dead endpoint logs
	// one warning, not one per attempt.
	failing   bool
	statsAt   time.Time
	queueErrs int
}

// statsEvery bounds how often a worker refreshes the queue gauges.
const statsEvery = 2 * time.Second

func (w *worker) run(ctx context.Context) {
	log := w.n.logger.With("endpoint", w.ep.Name)
	for ctx.Err() == nil {
		w.refreshStats(ctx)
		e, err := w.n.q.next(ctx, w.ep.Name)
		if err != nil {
			if w.queueErrs == 0 {
				log.Warn("webhooks: reading the queue failed; retrying", "err", err)
			}
			sleep(ctx, backoff(w.queueErrs, w.n.cfg.Backoff.Min, w.n.cfg.Backoff.Max, w.n.rnd))
			w.queueErrs++
			continue
		}
		if w.queueErrs > 0 {
			log.Info("webhooks: queue readable again")
			w.queueErrs = 0
		}
		if e != nil {
			w.deliver(ctx, e)
		}
	}
}

func (w *worker) refreshStats(ctx context.Context) {
	m := w.n.metrics
	if m == nil || time.Since(w.statsAt) < statsEvery {
		return
	}
	w.statsAt = time.Now()
	depth, oldest, err := w.n.q.stats(ctx, w.ep.Name)
	if err != nil {
		return
	}
	m.depth.WithLabelValues(w.ep.Name).Set(float64(depth))
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, w.n.now().Sub(oldest).Seconds())
	}
	m.oldest.WithLabelValues(w.ep.Name).Set(age)
}

// deliver posts one entry until a 2xx answer, until the event is older
// than max_age (dropped), until shutdown (released for another replica),
// or until another replica has taken it over.
func (w *worker) deliver(ctx context.Context, e *entry) {
	var q queued
	var body []byte
	var ctype string
	err := json.Unmarshal(e.data, &q)
	if err == nil {
		body, ctype, err = encode(w.ep, q)
	}
	if err != nil {
		w.n.logger.Error("webhooks: dropping an entry that does not decode", "endpoint", w.ep.Name, "entry", e.id, "err", err)
		w.drop(ctx, e, dropCorrupt)
		return
	}
	for attempt := 0; ; attempt++ {
		if age := w.n.now().Sub(q.Event.Timestamp); age > w.n.cfg.MaxAge {
			w.n.logger.Warn("webhooks: dropping an event older than max_age", "endpoint", w.ep.Name, "id", q.Event.ID, "age", age.Round(time.Second))
			w.drop(ctx, e, dropMaxAge)
			return
		}
		if err := w.post(ctx, body, ctype, q.Event.ID); err == nil {
			w.settle(ctx, e)
			return
		} else if !w.failing {
			w.failing = true
			w.n.logger.Warn("webhooks: delivery failed; retrying with backoff", "endpoint", w.ep, "id", q.Event.ID, "err", err)
		}
		wait := backoff(attempt, w.n.cfg.Backoff.Min, w.n.cfg.Backoff.Max, w.n.rnd)
		if !w.wait(ctx, e, wait) {
			return
		}
	}
}

// settle acknowledges a delivered entry. If the acknowledgement fails the
// entry stays pending and is delivered again later: at least once.
func (w *worker) settle(ctx context.Context, e *entry) {
	if w.failing {
		w.failing = false
		w.n.logger.Info("webhooks: endpoint accepts deliveries again", "endpoint", w.ep.Name)
	}
	if err := w.n.q.ack(context.WithoutCancel(ctx), w.ep.Name, e); err != nil {
		w.n.logger.Warn("webhooks: acknowledging a delivered event failed; it may be delivered again", "endpoint", w.ep.Name, "entry", e.id, "err", err)
	}
}

func (w *worker) drop(ctx context.Context, e *entry, reason string) {
	if m := w.n.metrics; m != nil {
		m.dropped.WithLabelValues(w.ep.Name, reason).Inc()
	}
	if err := w.n.q.ack(context.WithoutCancel(ctx), w.ep.Name, e); err != nil {
		w.n.logger.Warn("webhooks: removing a dropped event failed", "endpoint", w.ep.Name, "entry", e.id, "err", err)
	}
}

// wait sleeps d before the next attempt, touching the entry often enough
// that no other replica claims it meanwhile. It returns false when the
// delivery must stop: at shutdown (the entry is released first) or when
// the entry is no longer this replica's.
func (w *worker) wait(ctx context.Context, e *entry, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		step := min(time.Until(deadline), w.n.cfg.ClaimIdle/3)
		if !sleep(ctx, step) {
			if err := w.n.q.release(context.WithoutCancel(ctx), w.ep.Name, e); err != nil {
				w.n.logger.Warn("webhooks: releasing an event at shutdown failed; another replica claims it after claim_idle", "endpoint", w.ep.Name, "entry", e.id, "err", err)
			}
			return false
		}
		if owned, err := w.n.q.touch(ctx, w.ep.Name, e); err == nil && !owned {
			return false
		}
		if !time.Now().Before(deadline) {
			return true
		}
	}
}

// post is one delivery attempt. It runs on a context detached from
// shutdown, bounded by the endpoint's timeout: an attempt in flight at
// SIGTERM finishes, so its answer is not lost to a cut connection.
func (w *worker) post(ctx context.Context, body []byte, ctype, id string) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, w.ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range w.ep.Headers {
		req.Header.Set(k, v)
	}
	ts := w.n.now().Unix()
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "stratus-webhooks")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(EventIDHeader, id)
	if w.ep.Secret != "" {
		req.Header.Set(SignatureHeader, Sign([]byte(w.ep.Secret), ts, body))
	}
	start := time.Now()
	resp, err := w.n.client.Do(req)
	result := resultNetworkError
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		result = resultSuccess
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			result, err = resultHTTPError, fmt.Errorf("endpoint answered %s", resp.Status)
		}
	}
	if m := w.n.metrics; m != nil {
		m.deliveries.WithLabelValues(w.ep.Name, result).Inc()
		m.latency.WithLabelValues(w.ep.Name).Observe(time.Since(start).Seconds())
	}
	return err
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
