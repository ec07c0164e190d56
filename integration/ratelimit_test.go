package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

// TestRateLimitSharedAcrossReplicas: two replicas on one Redis draw on one
// allowance per client, so spreading a burst over replicas gains nothing.
func TestRateLimitSharedAcrossReplicas(t *testing.T) {
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	root := t.TempDir()
	const burst = 4
	var replicas []*server
	for range 2 {
		replicas = append(replicas, startServer(t, []string{"--root", root,
			"--set", "redis.addrs=" + redis.Addr(),
			// One request per 100 s: within the test only the burst is there.
			"--set", "limits.rate.requests_per_second=0.01",
			"--set", "limits.rate.burst=" + strconv.Itoa(burst),
		}))
	}
	get := func(s *server) *http.Response {
		t.Helper()
		resp, err := http.Get(s.URL() + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range burst {
		resp := get(replicas[i%2])
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d (replica %d) within the burst: %s", i, i%2, resp.Status)
		}
	}
	for i, s := range replicas {
		resp := get(s)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("replica %d after the shared burst: %s %s, want 429", i, resp.Status, body)
		}
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 100 {
			t.Errorf("replica %d Retry-After = %q, want whole seconds in 1..100", i, resp.Header.Get("Retry-After"))
		}
		var eb struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "TOOMANYREQUESTS" {
			t.Errorf("replica %d body %q, want a TOOMANYREQUESTS error", i, body)
		}
	}
	// Probes are not rate limited: a limited client must not make the
	// replica look unhealthy.
	resp, err := http.Get(replicas[0].URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz while the client is limited: %s", resp.Status)
	}
}
