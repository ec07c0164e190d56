package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

// TestImmutableTagRaceAcrossReplicas: two `stratus serve` processes on one
// filesystem root and one Redis race 50 times to create one new immutable
// tag with different manifests; each time exactly one wins and the other
// is refused with DENIED.
func TestImmutableTagRaceAcrossReplicas(t *testing.T) {
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	args := []string{"--root", t.TempDir(), "--set", "redis.addrs=" + redis.Addr()}
	env := `STRATUS_POLICIES_IMMUTABLE_TAGS=[{"repository":"prod/**","tags":["v*"]}]`
	a, b := startServer(t, args, env), startServer(t, args, env)
	const repo = "prod/race"
	shaOf := func(p []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(p)) }
	do := func(base, method, path string, body []byte, ct string) (int, string) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	var manifests [2][]byte
	for i := range manifests {
		layer := []byte(fmt.Sprintf("race layer %d", i))
		for _, blob := range [][]byte{cfg, layer} {
			if st, body := do(a.URL(), "POST", "/v2/"+repo+"/blobs/uploads/?digest="+shaOf(blob), blob, ""); st != 201 {
				t.Fatalf("upload: %d %s", st, body)
			}
		}
		manifests[i] = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
			shaOf(cfg), len(cfg), shaOf(layer), len(layer)))
	}
	const mt = "application/vnd.oci.image.manifest.v1+json"
	for i := range 50 {
		tag := fmt.Sprintf("v%d", i)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var status [2]int
		var bodies [2]string
		for j, s := range []*server{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status[j], bodies[j] = do(s.URL(), "PUT", "/v2/"+repo+"/manifests/"+tag, manifests[j], mt)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for j := range status {
			switch {
			case status[j] == 201 && winner < 0:
				winner = j
			case status[j] == 403 && strings.Contains(bodies[j], "DENIED") && strings.Contains(bodies[j], "prod/**"):
			default:
				t.Fatalf("iteration %d: replica %d answered %d %s (other: %d)", i, j, status[j], bodies[j], status[1-j])
			}
		}
		if winner < 0 {
			t.Fatalf("iteration %d: no winner: %v %v", i, status, bodies)
		}
		for _, s := range []*server{a, b} {
			req, _ := http.NewRequest("HEAD", s.URL()+"/v2/"+repo+"/manifests/"+tag, nil)
			req.Header.Set("Accept", mt)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got := res.Header.Get("Docker-Content-Digest"); got != shaOf(manifests[winner]) {
				t.Fatalf("iteration %d: %s serves %s, the winner pushed %s", i, s.Addr, got, shaOf(manifests[winner]))
			}
		}
	}
}
