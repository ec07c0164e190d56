package registry

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/policy/immutable"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func newPolicyRegistry(t *testing.T, rules []immutable.Rule, locks locking.Store, store storage.Driver) *testRegistry {
	t.Helper()
	pol, err := immutable.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := New(context.Background(), Config{LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second},
		Deps{Storage: store, Locking: locks, TagPolicy: pol})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	return &testRegistry{t: t, srv: srv, store: store}
}

var testImmutableRules = []immutable.Rule{
	{Repository: "prod/**", Tags: []string{"v*"}},
	{Repository: "staging/**", Tags: []string{"v*"}, AllowDelete: true},
}

func TestImmutableTags(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	tr := newPolicyRegistry(t, testImmutableRules, locks, inmemory.New())
	put := func(repo, ref string, m []byte, query string) resp {
		return tr.do("PUT", "/v2/"+repo+"/manifests/"+ref+query, m, "Content-Type", mtOCIManifest)
	}
	cases := []struct {
		name, repo, tag string
		// second PUT uses another manifest; wantSecond is its status.
		wantSecond, wantDelete int
	}{
		{"immutable tag", "prod/app", "v1", 403, 403},
		{"allow_delete", "staging/app", "v1", 403, 202},
		{"tag pattern does not match", "prod/app", "latest", 201, 202},
		{"repository does not match", "dev/app", "v1", 201, 202},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr.t = t
			d1, m1 := tr.imageManifest(c.repo, []byte(fmt.Sprintf("layer-a-%d", i)))
			d2, m2 := tr.imageManifest(c.repo, []byte(fmt.Sprintf("layer-b-%d", i)))
			tr.expect(put(c.repo, c.tag, m1, ""), 201, "")
			// The identical digest again (a retry whose answer was lost).
			tr.expect(put(c.repo, c.tag, m1, ""), 201, "")
			r := put(c.repo, c.tag, m2, "")
			if c.wantSecond == 403 {
				tr.expect(r, 403, "DENIED")
				if !strings.Contains(string(r.body), `prod/**`) && !strings.Contains(string(r.body), `staging/**`) {
					t.Fatalf("denial does not name the rule: %s", r.body)
				}
				// ?tag= on a digest PUT is held to the same rule.
				tr.expect(put(c.repo, d2, m2, "?tag="+c.tag), 403, "DENIED")
				if got := tr.do("HEAD", "/v2/"+c.repo+"/manifests/"+c.tag, nil); got.header.Get("Docker-Content-Digest") != d1 {
					t.Fatalf("tag moved to %s", got.header.Get("Docker-Content-Digest"))
				}
			} else {
				tr.expect(r, c.wantSecond, "")
			}
			r = tr.do("DELETE", "/v2/"+c.repo+"/manifests/"+c.tag, nil)
			if c.wantDelete == 403 {
				tr.expect(r, 403, "DENIED")
				// Deleting the manifest would remove the tag with it.
				tr.expect(tr.do("DELETE", "/v2/"+c.repo+"/manifests/"+d1, nil), 403, "DENIED")
				tr.expect(tr.do("HEAD", "/v2/"+c.repo+"/manifests/"+c.tag, nil), 200, "")
			} else {
				tr.expect(r, c.wantDelete, "")
			}
		})
	}
}

// TestImmutableTagRace: two replicas on one store and one lock store race
// to create one new immutable tag with different manifests. The
// create-only tag write leaves exactly one winner every time.
func TestImmutableTagRace(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	store := inmemory.New()
	a := newPolicyRegistry(t, testImmutableRules, locks, store)
	b := newPolicyRegistry(t, testImmutableRules, locks, store)
	const repo = "prod/race"
	_, m1 := a.imageManifest(repo, []byte("race-layer-1"))
	_, m2 := a.imageManifest(repo, []byte("race-layer-2"))
	const iterations = 50
	for i := range iterations {
		tag := fmt.Sprintf("v%d", i)
		start := make(chan struct{})
		var wg sync.WaitGroup
		status := make([]int, 2)
		bodies := make([][]byte, 2)
		for j, tr := range []*testRegistry{a, b} {
			m := [][]byte{m1, m2}[j]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status[j], bodies[j] = send(tr, "PUT", "/v2/"+repo+"/manifests/"+tag, m, "Content-Type", mtOCIManifest)
			}()
		}
		close(start)
		wg.Wait()
		winners := 0
		var winner []byte
		for j, st := range status {
			switch {
			case st == 201:
				winners++
				winner = [][]byte{m1, m2}[j]
			case st == 403 && strings.Contains(string(bodies[j]), "DENIED"):
			default:
				t.Fatalf("iteration %d: replica %d answered %d %s", i, j, st, bodies[j])
			}
		}
		if winners != 1 {
			t.Fatalf("iteration %d: %d winners (%v)", i, winners, status)
		}
		got := a.do("HEAD", "/v2/"+repo+"/manifests/"+tag, nil).header.Get("Docker-Content-Digest")
		if got != sha(winner) {
			t.Fatalf("iteration %d: tag points at %s, the winner pushed %s", i, got, sha(winner))
		}
	}
}
