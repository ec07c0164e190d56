package notifications

import (
	"context"
	"maps"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

func TestDepth(t *testing.T) {
	queues(t, func(t *testing.T, client goredis.UniversalClient) {
		rc := newReceiver(t)
		rc.down.Store(true)
		cfg := testConfig(rc.srv.URL)
		cfg.Endpoints = append(cfg.Endpoints, Endpoint{Name: "team", URL: rc.srv.URL, Secret: testSecret, Filters: Filters{Repositories: []string{"team/**"}}})
		cfg.SetDefaults()
		node := newNode(t, cfg, client, "a", false)
		depth := func() map[string]int64 {
			t.Helper()
			d, err := node.n.Depth(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		for _, step := range []struct {
			name string
			emit []string // repositories of the events pushed in this step
			want map[string]int64
		}{
			{"nothing queued", nil, map[string]int64{"hook": 0, "team": 0}},
			{"filtered per endpoint", []string{"team/app", "other/app", "team/lib"}, map[string]int64{"hook": 3, "team": 2}},
			{"adds up", []string{"other/x"}, map[string]int64{"hook": 4, "team": 2}},
		} {
			for _, repo := range step.emit {
				node.n.Emit(context.Background(), KindManifest, pushEvent(repo))
			}
			if got := depth(); !maps.Equal(got, step.want) {
				t.Errorf("%s: depth %v, want %v", step.name, got, step.want)
			}
		}

		// An entry a worker holds (retrying a down endpoint) still counts.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); node.n.Run(ctx) }()
		defer func() { cancel(); <-done }()
		waitFor(t, 20*time.Second, "delivery attempts", func() bool { return rc.attempts.Load() >= 3 })
		if got, want := depth(), map[string]int64{"hook": 4, "team": 2}; !maps.Equal(got, want) {
			t.Errorf("while retrying: depth %v, want %v", got, want)
		}
		rc.down.Store(false)
		waitFor(t, 20*time.Second, "an empty queue", func() bool {
			return maps.Equal(depth(), map[string]int64{"hook": 0, "team": 0})
		})
	})
}

func TestDepthRedisDown(t *testing.T) {
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: 1})
	t.Cleanup(func() { client.Close() })
	node := newNode(t, testConfig("http://127.0.0.1:1/"), client, "a", false)
	node.n.Emit(context.Background(), KindManifest, pushEvent("a"))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// An unknown depth is an error, never a 0 that reads as "all delivered".
	if d, err := node.n.Depth(context.Background()); err == nil {
		t.Fatalf("depth %v with Redis stopped, want an error", d)
	}
}
