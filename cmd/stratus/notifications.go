package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/stratus-registry/stratus/auth"
	"github.com/stratus-registry/stratus/httpmw"
	"github.com/stratus-registry/stratus/locking"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
	"github.com/stratus-registry/stratus/notifications"
	"github.com/stratus-registry/stratus/registry"
)

// openNotifications builds the webhook notifier the configuration asks
// for and returns the registry's event sink and a function that stops
// delivery. store is the lock store before instrumentation: with Redis,
// the queue shares its connection pool.
//
// In `stratus serve` (obs set) the delivery workers run until stop, which
// closeAll calls after the HTTP drain, so events of the last requests are
// queued before the workers let go. Other commands (gc run) only enqueue,
// and only into Redis: an in-process queue would die with the command.
func openNotifications(ctx context.Context, cfg *Config, store locking.Store, logger *slog.Logger, obs *observability) (registry.EventSink, func(), error) {
	nop := func() {}
	if len(cfg.Notifications.Endpoints) == 0 {
		return nil, nop, nil
	}
	opts := notifications.Options{
		InstanceID: instanceID(), SourceAddr: sourceAddr(cfg.HTTP.Addr),
		Logger: logger.With("component", "webhooks"),
	}
	if rs, ok := store.(*lockredis.Store); ok {
		opts.Redis, opts.KeyPrefix = rs.Client(), cfg.Redis.KeyPrefix
	} else if obs == nil {
		logger.Info("webhooks: events of this command are not sent without redis (no replica could deliver them)")
		return nil, nop, nil
	}
	if obs != nil {
		m, err := notifications.NewMetrics(obs.registry)
		if err != nil {
			return nil, nil, err
		}
		opts.Metrics = m
	}
	n, err := notifications.New(cfg.Notifications, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("notifications: %w", err)
	}
	sink := &eventSink{n: n, actor: func(r *http.Request) string { return auth.IdentityFrom(r.Context()).Name }}
	if obs == nil {
		return sink, nop, nil
	}
	if opts.Redis == nil {
		logger.Warn("webhooks: no redis configured: undelivered events are kept in this process and lost when it exits")
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.Run(wctx)
	}()
	for _, ep := range cfg.Notifications.Endpoints {
		logger.Info("webhooks: delivering", "endpoint", ep, "instance", opts.InstanceID)
	}
	return sink, func() { cancel(); wg.Wait() }, nil
}

// eventSink renders the registry's events as notifications.
type eventSink struct {
	n *notifications.Notifier
	// actor names the authenticated user of a request (events carry it
	// as actor.name); nil leaves it empty.
	actor func(*http.Request) string
}

func (s *eventSink) Emit(ctx context.Context, e registry.Event) {
	ev := notifications.Event{
		Action: notifications.Action(e.Action),
		Target: notifications.Target{
			MediaType: e.MediaType, Digest: e.Digest, Size: e.Size, Length: e.Size,
			Repository: e.Repository, FromRepository: e.FromRepository, Tag: e.Tag,
		},
	}
	if r := e.Request; r != nil {
		ev.Request = notifications.Request{
			ID: r.Header.Get(httpmw.RequestIDHeader), Addr: clientAddr(r), Host: r.Host,
			Method: r.Method, UserAgent: r.UserAgent(),
		}
		ev.Target.URL = targetURL(r, e)
		if s.actor != nil {
			ev.Actor.Name = s.actor(r)
		}
	} else {
		ev.Actor.Name = notifications.GCActor
	}
	s.n.Emit(ctx, notifications.Kind(e.Kind), ev)
}

func clientAddr(r *http.Request) string {
	if ip := httpmw.ClientIP(r.Context()); ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// targetURL is where the target can be fetched, as the client addressed
// this registry.
func targetURL(r *http.Request, e registry.Event) string {
	if e.Digest == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	what := "manifests"
	if e.Kind == registry.EventBlob {
		what = "blobs"
	}
	return scheme + "://" + r.Host + "/v2/" + e.Repository + "/" + what + "/" + e.Digest.String()
}

// instanceID names this process: its consumer in the webhook streams and
// source.instanceID. The random part keeps a restarted replica (same
// hostname) from inheriting its predecessor's pending deliveries blindly;
// those are claimed through XAUTOCLAIM like any dead replica's.
func instanceID() string {
	var b [4]byte
	rand.Read(b[:])
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "stratus"
	}
	return host + "-" + hex.EncodeToString(b[:])
}

// sourceAddr is source.addr: this host and the port the registry listens on.
func sourceAddr(httpAddr string) string {
	host, _ := os.Hostname()
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return host
	}
	return net.JoinHostPort(host, port)
}
