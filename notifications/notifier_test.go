package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

const testSecret = "receiver-secret"

// receiver is a webhook endpoint on 127.0.0.1 that verifies signatures and
// records the event ids it accepted; while down it answers 503.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	down     atomic.Bool
	attempts atomic.Int64
	mu       sync.Mutex
	ids      []string
	ctypes   []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.attempts.Add(1)
		if rc.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := Verify([]byte(testSecret), r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("delivery with a bad signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var env Envelope
		if err := json.Unmarshal(body, &env); err != nil || len(env.Events) != 1 {
			t.Errorf("body %q: %v", body, err)
		}
		if env.Events[0].ID != r.Header.Get(EventIDHeader) {
			t.Errorf("%s = %q, body has id %q", EventIDHeader, r.Header.Get(EventIDHeader), env.Events[0].ID)
		}
		rc.mu.Lock()
		rc.ids = append(rc.ids, env.Events[0].ID)
		rc.ctypes = append(rc.ctypes, r.Header.Get("Content-Type"))
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

// waitFor polls cond for up to limit; the limit only bounds a failing test.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testNode struct {
	n       *Notifier
	reg     *prometheus.Registry
	stop    func()
	stopped chan struct{}
}

func testConfig(url string) Config {
	c := Config{
		Endpoints:       EndpointList{{Name: "hook", URL: url, Secret: testSecret}},
		Backoff:         BackoffConfig{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		ClaimIdle:       time.Second,
		StreamMaxLength: 1000,
	}
	c.SetDefaults()
	return c
}

// newNode builds a notifier (a replica) on client (nil: in-process) and,
// with run, starts its workers until the test ends or stop is called.
func newNode(t *testing.T, cfg Config, client goredis.UniversalClient, instance string, run bool) *testNode {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, Options{Redis: client, KeyPrefix: "test:", InstanceID: instance, SourceAddr: "127.0.0.1:5000", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{n: n, reg: reg, stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	tn.stop = func() { cancel(); <-tn.stopped }
	if !run {
		close(tn.stopped)
		return tn
	}
	go func() {
		defer close(tn.stopped)
		n.Run(ctx)
	}()
	t.Cleanup(tn.stop)
	return tn
}

func pushEvent(repo string) Event {
	return Event{Action: ActionPush, Target: Target{Repository: repo, MediaType: "application/vnd.oci.image.manifest.v1+json"}}
}

func startRedis(t *testing.T) goredis.UniversalClient {
	srv := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// queues runs a test on both queue implementations.
func queues(t *testing.T, f func(t *testing.T, client goredis.UniversalClient)) {
	t.Run("memory", func(t *testing.T) { f(t, nil) })
	t.Run("redis", func(t *testing.T) { f(t, startRedis(t)) })
}

func TestDeliveredAfterReceiverReturns(t *testing.T) {
	queues(t, func(t *testing.T, client goredis.UniversalClient) {
		rc := newReceiver(t)
		rc.down.Store(true)
		node := newNode(t, testConfig(rc.srv.URL), client, "a", true)
		for range 3 {
			node.n.Emit(context.Background(), KindManifest, pushEvent("team/app"))
		}
		waitFor(t, 20*time.Second, "retries while down", func() bool { return rc.attempts.Load() >= 5 })
		if got := rc.received(); len(got) != 0 {
			t.Fatalf("accepted %v while down", got)
		}
		rc.down.Store(false)
		waitFor(t, 20*time.Second, "3 deliveries", func() bool { return len(rc.received()) == 3 })
		if n := testutil.ToFloat64(node.n.metrics.deliveries.WithLabelValues("hook", resultHTTPError)); n < 5 {
			t.Errorf("http_error deliveries = %v, want >= 5", n)
		}
		// The receiver has the body before the worker reads the answer and counts it.
		waitFor(t, 20*time.Second, "3 successful deliveries counted", func() bool {
			return testutil.ToFloat64(node.n.metrics.deliveries.WithLabelValues("hook", resultSuccess)) == 3
		})
		waitFor(t, 20*time.Second, "an empty queue", func() bool {
			d, _, err := node.n.q.stats(context.Background(), "hook")
			return err == nil && d == 0
		})
	})
}

func TestDroppedAfterMaxAge(t *testing.T) {
	queues(t, func(t *testing.T, client goredis.UniversalClient) {
		rc := newReceiver(t)
		rc.down.Store(true)
		cfg := testConfig(rc.srv.URL)
		node := newNode(t, cfg, client, "a", false)
		node.n.Emit(context.Background(), KindManifest, pushEvent("team/app"))
		// The clock jumps past max_age once the first attempt failed.
		var jumped atomic.Bool
		node.n.now = func() time.Time {
			if jumped.Load() {
				return time.Now().Add(cfg.MaxAge + time.Minute)
			}
			return time.Now()
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); node.n.Run(ctx) }()
		waitFor(t, 20*time.Second, "a failed attempt", func() bool { return rc.attempts.Load() >= 1 })
		jumped.Store(true)
		dropped := node.n.metrics.dropped.WithLabelValues("hook", dropMaxAge)
		waitFor(t, 20*time.Second, "the drop", func() bool { return testutil.ToFloat64(dropped) == 1 })
		cancel()
		<-done
		if d, _, err := node.n.q.stats(context.Background(), "hook"); err != nil || d != 0 {
			t.Errorf("queue depth after the drop = %d (%v), want 0", d, err)
		}
	})
}

func TestOverflowDropsOldestAndCounts(t *testing.T) {
	queues(t, func(t *testing.T, client goredis.UniversalClient) {
		cfg := testConfig("http://127.0.0.1:1/")
		cfg.StreamMaxLength = 100
		node := newNode(t, cfg, client, "a", false)
		for range 130 {
			node.n.Emit(context.Background(), KindManifest, pushEvent("a"))
		}
		if d, _, err := node.n.q.stats(context.Background(), "hook"); err != nil || d != 100 {
			t.Errorf("depth = %d (%v), want 100", d, err)
		}
		if n := testutil.ToFloat64(node.n.metrics.dropped.WithLabelValues("hook", dropOverflow)); n != 30 {
			t.Errorf("overflow drops = %v, want 30", n)
		}
	})
}

func TestEmitFilters(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1/")
	cfg.Endpoints = append(cfg.Endpoints, Endpoint{Name: "team", URL: "http://127.0.0.1:1/", Filters: Filters{
		Actions: []Action{ActionPush}, Repositories: []string{"team/**"},
	}})
	cfg.SetDefaults()
	tests := []struct {
		name          string
		blobPush      bool
		kind          Kind
		e             Event
		hook, teamGot int64
	}{
		{"manifest push in team", false, KindManifest, pushEvent("team/app"), 1, 1},
		{"manifest push elsewhere", false, KindManifest, pushEvent("other/app"), 1, 0},
		{"pull in team", false, KindManifest, Event{Action: ActionPull, Target: Target{Repository: "team/app"}}, 1, 0},
		{"blob push off by default", false, KindBlob, pushEvent("team/app"), 0, 0},
		{"blob push on", true, KindBlob, pushEvent("team/app"), 1, 1},
		{"blob mount is not a blob push", false, KindBlob, Event{Action: ActionMount, Target: Target{Repository: "team/app"}}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.BlobPush = tt.blobPush
			node := newNode(t, c, nil, "a", false)
			node.n.Emit(context.Background(), tt.kind, tt.e)
			for ep, want := range map[string]int64{"hook": tt.hook, "team": tt.teamGot} {
				if d, _, _ := node.n.q.stats(context.Background(), ep); d != want {
					t.Errorf("%s queued %d, want %d", ep, d, want)
				}
			}
		})
	}
}

func TestTwoReplicasDeliverEachEventOnce(t *testing.T) {
	client := startRedis(t)
	rc := newReceiver(t)
	cfg := testConfig(rc.srv.URL)
	a := newNode(t, cfg, client, "a", true)
	b := newNode(t, cfg, client, "b", true)
	var want []string
	for i := range 60 {
		e := pushEvent("team/app")
		e.ID = newEventID()
		want = append(want, e.ID)
		[]*testNode{a, b}[i%2].n.Emit(context.Background(), KindManifest, e)
	}
	waitFor(t, 30*time.Second, "60 deliveries", func() bool { return len(rc.received()) >= 60 })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive meanwhile
	seen := map[string]int{}
	for _, id := range rc.received() {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s delivered %d times", id, seen[id])
		}
	}
	byA := testutil.ToFloat64(a.n.metrics.deliveries.WithLabelValues("hook", resultSuccess))
	byB := testutil.ToFloat64(b.n.metrics.deliveries.WithLabelValues("hook", resultSuccess))
	if byA+byB != 60 {
		t.Errorf("deliveries a=%v b=%v, want 60 in all", byA, byB)
	}
}

func TestDeadReplicasEntryClaimed(t *testing.T) {
	client := startRedis(t)
	rc := newReceiver(t)
	cfg := testConfig(rc.srv.URL)
	// Replica a reads the entry and dies before delivering it: the entry
	// is pending on a, and nobody will ever ack it there.
	a := newNode(t, cfg, client, "a", false)
	a.n.Emit(context.Background(), KindManifest, pushEvent("team/app"))
	e, err := a.n.q.next(context.Background(), "hook")
	if err != nil || e == nil {
		t.Fatalf("a read %v, %v", e, err)
	}
	newNode(t, cfg, client, "b", true)
	waitFor(t, 30*time.Second, "b to deliver a's entry", func() bool { return len(rc.received()) == 1 })
	pending, err := client.XPending(context.Background(), "test:events:{hook}", groupName).Result()
	if err != nil || pending.Count != 0 {
		t.Errorf("pending after delivery = %+v (%v), want none", pending, err)
	}
}

func TestShutdownReleasesInFlight(t *testing.T) {
	client := startRedis(t)
	rc := newReceiver(t)
	rc.down.Store(true)
	cfg := testConfig(rc.srv.URL)
	// With a claim_idle this long, only a release lets b take the entry
	// before the test's deadline.
	cfg.ClaimIdle = 10 * time.Minute
	a := newNode(t, cfg, client, "a", true)
	a.n.Emit(context.Background(), KindManifest, pushEvent("team/app"))
	waitFor(t, 20*time.Second, "a failing attempt", func() bool { return rc.attempts.Load() >= 1 })
	a.stop()
	rc.down.Store(false)
	newNode(t, cfg, client, "b", true)
	waitFor(t, 30*time.Second, "b to deliver the released entry", func() bool { return len(rc.received()) == 1 })
}

// failingQueue refuses every add and counts the tries.
type failingQueue struct {
	*memQueue
	tries int
}

func (q *failingQueue) add(context.Context, []item) ([]int64, error) {
	q.tries++
	return nil, errors.New("redis down")
}

func TestEnqueueFailurePausesTries(t *testing.T) {
	node := newNode(t, testConfig("http://127.0.0.1:1/"), nil, "a", false)
	fq := &failingQueue{memQueue: newMemQueue(100, time.Now)}
	node.n.q = fq
	t0 := time.Now()
	tests := []struct {
		at        time.Duration
		wantTries int
	}{
		{0, 1},
		{refusedPause / 2, 1}, // paused: counted as lost without a try
		{refusedPause + refusedPause/2, 2},
		{refusedPause + refusedPause/2 + 1, 2},
	}
	for i, tt := range tests {
		node.n.now = func() time.Time { return t0.Add(tt.at) }
		node.n.Emit(context.Background(), KindManifest, pushEvent("a"))
		if fq.tries != tt.wantTries {
			t.Errorf("emit %d at +%v: %d tries, want %d", i, tt.at, fq.tries, tt.wantTries)
		}
		if n := testutil.ToFloat64(node.n.metrics.enqueueErr); n != float64(i+1) {
			t.Errorf("emit %d: %v events counted lost, want %d", i, n, i+1)
		}
	}
}

// TestRedisLostItsDataRecovers: after Redis lost the stream and its group
// (a restart without persistence), workers recreate the group and go on.
func TestRedisLostItsDataRecovers(t *testing.T) {
	client := startRedis(t)
	rc := newReceiver(t)
	node := newNode(t, testConfig(rc.srv.URL), client, "a", true)
	node.n.Emit(context.Background(), KindManifest, pushEvent("a"))
	waitFor(t, 20*time.Second, "the first delivery", func() bool { return len(rc.received()) == 1 })
	if err := client.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	node.n.Emit(context.Background(), KindManifest, pushEvent("a"))
	waitFor(t, 30*time.Second, "a delivery after the data loss", func() bool { return len(rc.received()) == 2 })
}
