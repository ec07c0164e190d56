package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	"github.com/stratus-registry/stratus/storage/s3"
	"github.com/stratus-registry/stratus/storage/s3/s3test"
)

// The GC stress test (issue 6): replicas on MinIO and Redis with GC looping
// every second and a grace of a few seconds, while clients push images that
// share layers, re-tag, delete tags and manifests, mount across
// repositories and pull. Afterwards every acknowledged image that is still
// tagged pulls byte for byte, and a quiet final GC leaves no garbage.

const (
	stressGrace     = 4 * time.Second
	stressUploadTTL = 10 * time.Second
	stressRepos     = 3
	stressWorkers   = 6
)

type stressCounts struct {
	pushed, pushFailed, retagged, tagsDeleted, manifestsDeleted, mounted, pulled, verified atomic.Int64
}

func TestGCStress(t *testing.T) {
	duration := 60 * time.Second
	if testing.Short() {
		duration = 15 * time.Second
	}
	mio := s3test.Start(t)
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	prefix := uniquePrefix(t)
	args := append(s3Args(mio, prefix),
		"--set", "redis.addrs="+redis.Addr(),
		"--set", "registry.lease_ttl=2s",
		"--set", "registry.pin_timeout=1s",
		"--set", "registry.upload_ttl="+stressUploadTTL.String(),
		"--set", "registry.gc.interval=1s",
		"--set", "registry.gc.grace="+stressGrace.String(),
		"--set", "registry.gc.untagged=delete",
		"--set", "registry.gc.untagged_age="+stressGrace.String(),
	)
	var addrs []string
	var replicas []*server
	for i := 0; i < 2; i++ {
		s := startServer(t, args)
		replicas = append(replicas, s)
		addrs = append(addrs, s.Addr)
	}
	_, lb := newRoundRobin(t, addrs...)
	host := strings.TrimPrefix(lb.URL, "http://")
	refOf := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	base := make([]v1.Layer, 4)
	for i := range base {
		l, err := random.Layer(48<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		base[i] = l
	}
	var counts stressCounts
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	models := make([]map[string]v1.Image, stressWorkers) // ref -> image, per worker
	var wg sync.WaitGroup
	for w := 0; w < stressWorkers; w++ {
		models[w] = map[string]v1.Image{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stressWorker(ctx, t, w, refOf, base, models[w], &counts)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every acknowledged image still tagged pulls byte for byte.
	live := 0
	for _, m := range models {
		for r, img := range m {
			got, err := remote.Image(refOf(r))
			if err != nil {
				t.Fatalf("LOST: acknowledged image %s does not pull: %v", r, err)
			}
			layersEqual(t, img, got)
			wd, _ := img.Digest()
			gd, _ := got.Digest()
			if wd != gd {
				t.Fatalf("image %s: digest %s, pushed %s", r, gd, wd)
			}
			counts.verified.Add(1)
			live++
		}
	}

	// Quiet: after the grace period, one final pass leaves no garbage.
	time.Sleep(stressUploadTTL + stressGrace + time.Second)
	for _, s := range replicas {
		s.Stop()
	}
	out, err := exec.Command(stratusBin, append([]string{"gc", "run", "--json"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Logf("gc run stderr: %s", ee.Stderr)
		}
		t.Fatalf("final gc run: %v", err)
	}
	var final struct {
		BlobsDeleted   int   `json:"blobs_deleted"`
		BytesReclaimed int64 `json:"bytes_reclaimed"`
	}
	if err := json.Unmarshal(out, &final); err != nil {
		t.Fatalf("gc report: %v\n%s", err, out)
	}
	checkNoGarbage(t, mio, prefix, models)

	var reclaimed, claimsRefused, pinsRefused float64
	for _, s := range replicas {
		m := scrapeMetrics(s.Log())
		reclaimed += m["stratus_gc_bytes_reclaimed_total"]
		claimsRefused += m["stratus_gc_claims_refused_total"]
		pinsRefused += m["stratus_pins_refused_total"]
	}
	t.Logf("images pushed %d (failed cleanly %d), re-tagged %d, tags deleted %d, manifests deleted %d, mounts %d, pulled %d, verified %d (still tagged %d)",
		counts.pushed.Load(), counts.pushFailed.Load(), counts.retagged.Load(), counts.tagsDeleted.Load(), counts.manifestsDeleted.Load(),
		counts.mounted.Load(), counts.pulled.Load(), counts.verified.Load(), live)
	t.Logf("gc during the workload: %.0f bytes reclaimed, %.0f claims refused, %.0f pins refused; final pass: %d blobs, %d bytes",
		reclaimed, claimsRefused, pinsRefused, final.BlobsDeleted, final.BytesReclaimed)
	if counts.pushed.Load() == 0 || counts.manifestsDeleted.Load()+counts.tagsDeleted.Load() == 0 {
		t.Fatal("the workload did nothing")
	}
}

// scrapeMetrics reads the last /metrics snapshot a replica logged at
// shutdown. The replicas are stopped by then, so the log is the record.
func scrapeMetrics(log string) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "final metrics") {
			continue
		}
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if n, err := strconv.ParseFloat(v, 64); ok && err == nil {
				m["stratus_"+k] = n
			}
		}
	}
	return m
}

func stressWorker(ctx context.Context, t *testing.T, w int, refOf func(string) name.Reference, base []v1.Layer, model map[string]v1.Image, c *stressCounts) {
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	n := 0
	repoOf := func(i int) string { return fmt.Sprintf("stress/r%d", i%stressRepos) }
	pick := func() (string, v1.Image) {
		if len(model) == 0 {
			return "", nil
		}
		i := rng.IntN(len(model))
		for r, img := range model {
			if i == 0 {
				return r, img
			}
			i--
		}
		return "", nil
	}
	// settle resolves an operation cut off by the end of the workload: the
	// server may or may not have applied it, so ask it what the tags are.
	settle := func(refs map[string]v1.Image) {
		for r, img := range refs {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := remote.Head(refOf(r), remote.WithContext(sctx))
			cancel()
			if err == nil {
				model[r] = img
			} else {
				delete(model, r)
			}
		}
	}
	for ctx.Err() == nil {
		n++
		switch op := rng.IntN(10); {
		case op < 4 || len(model) < 2: // push an image sharing base layers
			unique, err := random.Layer(int64(16<<10+rng.IntN(64<<10)), types.DockerLayer)
			if err != nil {
				t.Error(err)
				return
			}
			img, err := mutate.AppendLayers(empty.Image, base[rng.IntN(len(base))], base[rng.IntN(len(base))], unique)
			if err != nil {
				t.Error(err)
				return
			}
			r := fmt.Sprintf("%s:w%d-%d", repoOf(rng.IntN(stressRepos)), w, n)
			if err := remote.Write(refOf(r), img, remote.WithContext(ctx)); err != nil {
				if ctx.Err() != nil {
					settle(map[string]v1.Image{r: img})
					return
				}
				c.pushFailed.Add(1)
				t.Logf("push %s failed (not acknowledged): %v", r, err)
				continue
			}
			c.pushed.Add(1)
			model[r] = img
		case op < 5: // re-tag
			r, img := pick()
			desc, err := remote.Get(refOf(r), remote.WithContext(ctx))
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("get %s: %v", r, err)
				}
				return
			}
			nr := fmt.Sprintf("%s:w%d-%d", strings.Split(r, ":")[0], w, n)
			tag, _ := name.NewTag(refOf(nr).String(), name.Insecure)
			if err := remote.Tag(tag, desc, remote.WithContext(ctx)); err != nil {
				if ctx.Err() != nil {
					settle(map[string]v1.Image{nr: img})
				} else {
					t.Errorf("tag %s: %v", nr, err)
				}
				return
			}
			c.retagged.Add(1)
			model[nr] = img
		case op < 6: // delete a tag
			r, img := pick()
			if err := remote.Delete(refOf(r), remote.WithContext(ctx)); err != nil {
				if ctx.Err() != nil {
					settle(map[string]v1.Image{r: img})
				} else {
					t.Errorf("delete tag %s: %v", r, err)
				}
				return
			}
			delete(model, r)
			c.tagsDeleted.Add(1)
		case op < 7: // delete a manifest and every tag of it
			r, img := pick()
			d, _ := img.Digest()
			repo := strings.Split(r, ":")[0]
			dref, _ := name.NewDigest(refOf(repo).String()+"@"+d.String(), name.Insecure)
			if err := remote.Delete(dref, remote.WithContext(ctx)); err != nil {
				if ctx.Err() != nil {
					affected := map[string]v1.Image{}
					for mr, mi := range model {
						if md, _ := mi.Digest(); md == d && strings.HasPrefix(mr, repo+":") {
							affected[mr] = mi
						}
					}
					settle(affected)
				} else {
					t.Errorf("delete manifest %s: %v", dref, err)
				}
				return
			}
			for mr, mi := range model {
				if md, _ := mi.Digest(); md == d && strings.HasPrefix(mr, repo+":") {
					delete(model, mr)
				}
			}
			c.manifestsDeleted.Add(1)
		case op < 8: // mount a shared layer into another repository
			r, img := pick()
			src := strings.Split(r, ":")[0]
			dst := repoOf(rng.IntN(stressRepos))
			layers, _ := img.Layers()
			ld, _ := layers[0].Digest()
			resp, err := http.Post(fmt.Sprintf("http://%s/v2/%s/blobs/uploads/?mount=%s&from=%s", refOf(r).Context().RegistryStr(), dst, ld, src), "", nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 201:
				c.mounted.Add(1)
			case 202: // not mountable (GC took it); drop the session
				req, _ := http.NewRequest("DELETE", "http://"+refOf(r).Context().RegistryStr()+resp.Header.Get("Location"), nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			default:
				t.Errorf("mount: %s", resp.Status)
				return
			}
		default: // pull and verify
			r, img := pick()
			// Its own deadline: a pull that started must finish and be
			// verified even if the workload's time runs out meanwhile.
			pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			got, err := remote.Image(refOf(r), remote.WithContext(pctx))
			if err == nil {
				err = sameLayers(img, got)
			}
			cancel()
			if err != nil {
				t.Errorf("LOST: pull of acknowledged %s: %v", r, err)
				return
			}
			c.pulled.Add(1)
		}
	}
}

// checkNoGarbage lists the bucket: every blob record is referenced by a
// tagged image, every data object has its record, every manifest is
// tagged, and no upload state is left.
func checkNoGarbage(t *testing.T, mio *s3test.Server, prefix string, models []map[string]v1.Image) {
	t.Helper()
	d, err := s3.New(context.Background(), mio.Config(prefix), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wantBlobs := map[string]bool{}
	wantManifests := map[string]bool{}
	for _, m := range models {
		for r, img := range m {
			md, _ := img.Digest()
			wantManifests[strings.Split(r, ":")[0]+"@"+md.String()] = true
			cd, _ := img.ConfigName()
			wantBlobs[cd.Hex] = true
			layers, _ := img.Layers()
			for _, l := range layers {
				ld, _ := l.Digest()
				wantBlobs[ld.Hex] = true
			}
		}
	}
	records, data := 0, 0
	var garbage []string
	after := ""
	for {
		page, err := d.List(context.Background(), "", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			k := o.Key
			switch {
			case strings.HasPrefix(k, "blobs/"):
				records++
				if parts := strings.Split(k, "/"); !wantBlobs[parts[len(parts)-1]] {
					garbage = append(garbage, k)
				}
			case strings.HasPrefix(k, "data/"):
				data++
			case strings.Contains(k, "/_manifests/"):
				repo := strings.TrimPrefix(k[:strings.Index(k, "/_manifests/")], "repos/")
				parts := strings.Split(k, "/")
				if !wantManifests[repo+"@"+parts[len(parts)-2]+":"+parts[len(parts)-1]] {
					garbage = append(garbage, k)
				}
			}
		}
		if !page.More || len(page.Objects) == 0 {
			break
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
	if records != data {
		t.Errorf("%d blob records but %d data objects: orphans or lost bytes", records, data)
	}
	if n, err := d.AbortStale(context.Background(), time.Now().Add(time.Hour), true); err != nil || n != 0 {
		t.Errorf("upload garbage left: %d multipart writes (%v)", n, err)
	}
	if len(garbage) > 0 {
		t.Errorf("unreferenced objects left after the final GC: %v", garbage)
	}
}
