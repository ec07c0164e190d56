package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/notifications"
)

// pushTags pushes one small random image per tag to base/repo.
func pushTags(t *testing.T, registry, repo string, tags []string) {
	t.Helper()
	for _, tag := range tags {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		r := refAt(t, registry, repo+":"+tag)
		if err := remote.Write(r, img); err != nil {
			t.Fatalf("push %s: %v", r, err)
		}
	}
}

func tagList(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// pushedTags counts the push events per tag.
func pushedTags(events []hookEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		if e.event.Action == notifications.ActionPush {
			out[e.event.Target.Tag]++
		}
	}
	return out
}

func pushOnly(hooks *hookServer) hookEndpoint {
	return hookEndpoint{Name: "hook", URL: hooks.srv.URL + "/hook", Secret: hookSecret,
		Filters: notifications.Filters{Actions: []notifications.Action{"push"}}}
}

// TestWebhookReceiverDownThenBack: events queued while the receiver fails
// arrive once it answers again, and the failures show in the metrics.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	hooks := newHookServer(t)
	hooks.down.Store(true)
	srv := startServer(t, append([]string{"--root", t.TempDir()}, fastRetries...), hookEnv(t, pushOnly(hooks)))
	tags := tagList("v", 3)
	pushTags(t, srv.Addr, "down/app", tags)
	deadline := time.Now().Add(60 * time.Second)
	for hooks.attempts.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts while the receiver was down", hooks.attempts.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := hooks.received("/hook"); len(got) != 0 {
		t.Fatalf("accepted while down: %+v", got)
	}
	// The receiver counts an attempt when it arrives, the metric once its
	// answer is handled: wait for the metric to catch up.
	for {
		mfs := scrape(t, metricsURL(t, srv))
		n := sample(mfs, "stratus_webhook_deliveries_total", map[string]string{"endpoint": "hook", "result": "http_error"})
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("http_error deliveries = %v, want >= 5", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	hooks.down.Store(false)
	got := pushedTags(hooks.waitEvents(t, "/hook", len(tags), 60*time.Second))
	for _, tag := range tags {
		if got[tag] != 1 {
			t.Errorf("tag %s: %d push events, want 1", tag, got[tag])
		}
	}
}

// TestWebhookReplicaKilledOtherDelivers: replica a holds undelivered
// events, one of them read and in flight, when it is SIGKILLed; replica b
// claims the in-flight one after claim_idle, reads the rest and delivers
// them all.
func TestWebhookReplicaKilledOtherDelivers(t *testing.T) {
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	hooks := newHookServer(t)
	hooks.down.Store(true)
	root := t.TempDir()
	args := append([]string{"--root", root, "--set", "redis.addrs=" + redis.Addr()}, fastRetries...)
	env := hookEnv(t, pushOnly(hooks))
	a := startServer(t, args, env)
	tags := tagList("k", 4)
	pushTags(t, a.Addr, "ha/app", tags)
	deadline := time.Now().Add(60 * time.Second)
	for hooks.attempts.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("replica a never tried to deliver")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	hooks.down.Store(false)
	startServer(t, args, env)
	got := pushedTags(hooks.waitEvents(t, "/hook", len(tags), 60*time.Second))
	for _, tag := range tags {
		if got[tag] < 1 {
			t.Errorf("tag %s: no push event after the kill", tag)
		}
	}
}

// TestWebhookTwoReplicasExactlyOnce: with a healthy receiver, two replicas
// sharing the stream deliver every event exactly once (delivery is at
// least once; duplicates need a replica to die or stall past claim_idle).
func TestWebhookTwoReplicasExactlyOnce(t *testing.T) {
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	hooks := newHookServer(t)
	root := t.TempDir()
	args := append([]string{"--root", root, "--set", "redis.addrs=" + redis.Addr()}, fastRetries...)
	env := hookEnv(t, pushOnly(hooks))
	a := startServer(t, args, env)
	b := startServer(t, args, env)
	_, lb := newRoundRobin(t, a.Addr, b.Addr)
	tags := tagList("x", 12)
	pushTags(t, strings.TrimPrefix(lb.URL, "http://"), "once/app", tags)
	hooks.waitEvents(t, "/hook", len(tags), 60*time.Second)
	time.Sleep(time.Second) // a duplicate would arrive meanwhile
	events := hooks.received("/hook")
	got := pushedTags(events)
	ids := map[string]int{}
	sources := map[string]bool{}
	for _, e := range events {
		ids[e.event.ID]++
		sources[e.event.Source.InstanceID] = true
	}
	for _, tag := range tags {
		if got[tag] != 1 {
			t.Errorf("tag %s: %d push events, want exactly 1", tag, got[tag])
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if len(sources) != 2 {
		t.Errorf("events came from %d replicas, want both (round robin)", len(sources))
	}
}

// refAt parses a reference on the registry at host:port.
func refAt(t *testing.T, registry, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(registry+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
