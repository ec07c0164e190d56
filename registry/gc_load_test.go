package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGCLoadSharedLayers is the randomized companion of
// TestGCUnlinkDoesNotHideSharedBlob. Base layers are shared by "stable"
// repositories (tagged images never deleted) and fresh "churn"
// repositories whose images are deleted, so that each GC pass unlinks the
// base layers from them. The trap: pins protect a blob against claims, so
// a stable repository that was just pulled would cover the race by luck.
// So each round first leaves the base layers unpinned for longer than the
// grace period, then runs a GC pass that holds every link claim a random
// while, and lands stable-repository requests at random moments inside
// it: HEAD, GET, a mount from the stable repository and a manifest PUT
// there must all succeed. Meanwhile a churn layer this pass collects is
// pushed again at a random moment (its record goes in the blob sweep, its
// data later in the orphan sweep, whose data claims are held a random
// while too): once acknowledged, it must be served byte for byte after
// the pass and in every later round.
func TestGCLoadSharedLayers(t *testing.T) {
	rounds, churnRepos := 6, 8
	if testing.Short() {
		rounds = 2
	}
	for name, newLocks := range lockStores(t) {
		t.Run(name, func(t *testing.T) {
			tr, reg := newTestRegistryWith(t, gcConfig("keep"), newLocks(t))
			base := [][]byte{[]byte("base layer 0"), []byte("base layer 1"), []byte("base layer 2")}
			stable := []string{"stable/a", "stable/b"}
			for _, repo := range stable {
				_, m := tr.imageManifest(repo, base...)
				tr.expect(tr.do("PUT", "/v2/"+repo+"/manifests/v1", m, "Content-Type", mtOCIManifest), 201, "")
			}
			var claimsHeld, dataClaimsHeld, checks atomic.Int64
			reg.hooks = &hooks{afterClaim: func(key string, ok bool) {
				switch {
				case ok && strings.Contains(key, "/_links/"):
					claimsHeld.Add(1)
				case ok && strings.HasPrefix(key, "data/"):
					dataClaimsHeld.Add(1)
				default:
					return
				}
				time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
			}}
			var pushedAgain [][]byte // acknowledged while a pass collected them
			for round := range rounds {
				for k := range churnRepos {
					repo := fmt.Sprintf("churn/r%d-%d", round, k)
					m, err := pushImage(tr, repo, append([][]byte{[]byte(repo)}, base...))
					if err != nil {
						t.Fatal(err)
					}
					tr.expect(tr.do("DELETE", "/v2/"+repo+"/manifests/"+sha(m), nil), 202, "")
				}
				ageOut() // nothing pins the base layers any more
				var wg sync.WaitGroup
				wg.Go(func() {
					if _, err := reg.RunGC(context.Background(), false); err != nil {
						t.Errorf("gc: %v", err)
					}
				})
				for w := range 2 {
					wg.Go(func() {
						time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
						repo := stable[rand.IntN(len(stable))]
						if err := useStable(tr, repo, base, fmt.Sprintf("r%d-w%d", round, w)); err != nil {
							t.Errorf("round %d: stable repository %s: %v", round, repo, err)
						}
						checks.Add(1)
					})
				}
				wg.Go(func() {
					time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
					l := []byte(fmt.Sprintf("churn/r%d-%d", round, rand.IntN(churnRepos)))
					if err := pushAgain(tr, "stable/again", l); err != nil {
						t.Errorf("round %d: %v", round, err)
						return
					}
					pushedAgain = append(pushedAgain, l) // this goroutine is the only writer during the round
				})
				wg.Wait()
				for _, l := range pushedAgain {
					if st, body := send(tr, "GET", "/v2/stable/again/blobs/"+sha(l), nil); st != 200 || !bytes.Equal(body, l) {
						t.Fatalf("round %d: layer %q pushed again during a pass: GET %d", round, l, st)
					}
				}
			}
			t.Logf("%d rounds, %d link claims and %d data claims held, %d stable checks, %d layers pushed again",
				rounds, claimsHeld.Load(), dataClaimsHeld.Load(), checks.Load(), len(pushedAgain))
			if dataClaimsHeld.Load() == 0 {
				t.Fatal("no data claim was held: the passes collected no blob data")
			}
			if claimsHeld.Load() < int64(rounds*churnRepos) {
				t.Fatalf("only %d link claims in %d rounds of %d churn repositories: GC did not unlink the base layers", claimsHeld.Load(), rounds, churnRepos)
			}
		})
	}
}

// pushAgain pushes an image of layer l into repo, as a client would:
// an answer that GC refused (the layer's digest being deleted that very
// moment) is retried, and only an acknowledged manifest PUT counts.
func pushAgain(tr *testRegistry, repo string, l []byte) error {
	var err error
	for range 10 {
		if _, err = pushImage(tr, repo, [][]byte{l}); err == nil {
			return nil
		}
		time.Sleep(30 * time.Millisecond)
	}
	return fmt.Errorf("pushing %q again: %w", l, err)
}

// useStable pulls the stable image's layers, mounts one into a scratch
// repository, and pushes a new tagged image of the base layers.
func useStable(tr *testRegistry, repo string, base [][]byte, tag string) error {
	for _, l := range base {
		if st, _ := send(tr, "HEAD", "/v2/"+repo+"/blobs/"+sha(l), nil); st != 200 {
			return fmt.Errorf("HEAD %s: %d", sha(l), st)
		}
		if st, body := send(tr, "GET", "/v2/"+repo+"/blobs/"+sha(l), nil); st != 200 || !bytes.Equal(body, l) {
			return fmt.Errorf("GET %s: %d", sha(l), st)
		}
	}
	l := base[rand.IntN(len(base))]
	if st, _ := send(tr, "POST", "/v2/mounted/"+tag+"/blobs/uploads/?mount="+sha(l)+"&from="+repo, nil); st != 201 {
		return fmt.Errorf("mount of %s from %s: %d", sha(l), repo, st)
	}
	m := manifestOf(base)
	if st, body := send(tr, "PUT", "/v2/"+repo+"/manifests/"+tag, m, "Content-Type", mtOCIManifest); st != 201 {
		return fmt.Errorf("manifest PUT: %d %s", st, body)
	}
	return nil
}

const loadConfigBlob = `{"architecture":"amd64","os":"linux"}`

func manifestOf(layers [][]byte) []byte {
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, sha(l), len(l)))
	}
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}`,
		mtOCIManifest, sha([]byte(loadConfigBlob)), len(loadConfigBlob), strings.Join(ls, ",")))
}

// pushImage uploads the config and layers into repo and puts the
// manifest; it returns the manifest.
func pushImage(tr *testRegistry, repo string, layers [][]byte) ([]byte, error) {
	for _, b := range append([][]byte{[]byte(loadConfigBlob)}, layers...) {
		if st, body := send(tr, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(b), b); st != 201 {
			return nil, fmt.Errorf("upload %s: %d %s", sha(b), st, body)
		}
	}
	m := manifestOf(layers)
	if st, body := send(tr, "PUT", "/v2/"+repo+"/manifests/"+sha(m), m, "Content-Type", mtOCIManifest); st != 201 {
		return nil, fmt.Errorf("manifest PUT: %d %s", st, body)
	}
	return m, nil
}

// send is tr.do for goroutines: it reports failures instead of stopping
// the test.
func send(tr *testRegistry, method, path string, body []byte, headers ...string) (int, []byte) {
	req, err := http.NewRequest(method, tr.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
