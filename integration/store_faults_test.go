package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// faultBlob is one blob a fault scenario pushes.
type faultBlob struct {
	seed byte
	n    int64
	dgst string
}

func newFaultBlob(seed byte, n int64) faultBlob {
	return faultBlob{seed: seed, n: n, dgst: patternDigest(seed, n)}
}

// pushFaultBlob pushes b to repo, monolithic (POST ?digest=) or chunked
// (POST, one PATCH, PUT), and returns the status of the request that ended
// the push and its Retry-After.
func pushFaultBlob(t *testing.T, srv *server, repo string, b faultBlob, chunked bool) (int, string) {
	t.Helper()
	data, _ := io.ReadAll(newPattern(b.seed, b.n))
	if !chunked {
		r := httpDo(t, "POST", srv.URL()+"/v2/"+repo+"/blobs/uploads/?digest="+b.dgst, data)
		return r.StatusCode, r.Header.Get("Retry-After")
	}
	r := httpDo(t, "POST", srv.URL()+"/v2/"+repo+"/blobs/uploads/", nil)
	if r.StatusCode != 202 {
		return r.StatusCode, r.Header.Get("Retry-After")
	}
	r = httpDo(t, "PATCH", srv.URL()+r.Header.Get("Location"), data, "Content-Range", fmt.Sprintf("0-%d", b.n-1))
	if r.StatusCode != 202 {
		return r.StatusCode, r.Header.Get("Retry-After")
	}
	r = httpDo(t, "PUT", srv.URL()+r.Header.Get("Location")+"?digest="+b.dgst, nil)
	return r.StatusCode, r.Header.Get("Retry-After")
}

// startBehindFaults starts `stratus serve` on cs's emulator behind a fault
// proxy, disabled, with the driver's retries cut short.
func startBehindFaults(t *testing.T, cs cloudStore, seed uint64, plan faultPlan) (*server, *faultProxy) {
	t.Helper()
	site := cs.start(t)
	f := newFaultProxy(t, cs.dialect, site.endpoint, seed, plan)
	return startServer(t, append(site.via(f.URL), cs.faultFlags...)), f
}

// TestStoreFaults pushes blobs, monolithic and chunked, through a store
// that misbehaves on every kind of request the driver sends, the
// registry's record and link writes included: S3 throttles (SlowDown),
// resets and stalls; Azure throttles (ServerBusy) and loses answers
// (applied, then the connection reset); GCS throttles (rateLimitExceeded)
// and loses answers. Every answer is a success or a clean retryable error
// (429/503 with Retry-After, never a bare 500), every fault of the plan
// happened, and nothing acknowledged or visible is ever corrupt.
func TestStoreFaults(t *testing.T) {
	eachCloudStore(t, nil, func(t *testing.T, cs cloudStore) {
		plan := cs.faultPlan(cs.dialect)
		srv, f := startBehindFaults(t, cs, cs.faultSeed, plan)
		f.enabled.Store(true)
		var acked, failed []faultBlob
		statuses := map[int]int{}
		for i := range 40 {
			b := newFaultBlob(byte(150+i), int64(64<<10+i*97<<10))
			status, retryAfter := pushFaultBlob(t, srv, "faults", b, i%2 == 1)
			statuses[status]++
			switch status {
			case 201:
				acked = append(acked, b)
			case 429, 503:
				if _, err := strconv.Atoi(retryAfter); err != nil {
					t.Errorf("blob %d: %d without a Retry-After", i, status)
				}
				failed = append(failed, b)
			default:
				t.Errorf("blob %d: status %d is neither success nor a clean retryable error", i, status)
			}
		}
		f.enabled.Store(false)
		t.Logf("statuses %v; faults injected:\n%s", statuses, f.table())
		for k := range numFaultKinds {
			if plan.planned(k) && f.injectedTotal(k) == 0 {
				t.Errorf("no %s fault was injected", k)
			}
		}
		if len(acked) == 0 {
			t.Fatal("nothing succeeded under faults: retries are not working")
		}
		for _, b := range acked {
			verifyStream(t, srv.URL()+"/v2/faults/blobs/"+b.dgst, b.dgst, b.n)
		}
		for _, b := range failed {
			checkAbsentOrIntact(t, srv.URL()+"/v2/faults/blobs/"+b.dgst, b.dgst)
		}
	})
}

// checkAbsentOrIntact: a failed push is either absent or, if its commit
// did land, intact.
func checkAbsentOrIntact(t *testing.T, url, dgst string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 {
		if sum := sha256.Sum256(body); "sha256:"+hex.EncodeToString(sum[:]) != dgst {
			t.Fatalf("a failed push left a corrupt blob %s", dgst)
		}
	} else if resp.StatusCode != 404 {
		t.Fatalf("GET of a failed push: %d", resp.StatusCode)
	}
}

// TestStoreThrottled: while the store answers every request with one
// error (its throttling, a plain 503, an internal error), pulls and pushes
// get the status the backend's table says (429 for throttling, 503 for
// the rest) with a Retry-After, after the driver's bounded retries: never
// a 500 or a false 201. Afterwards what was acknowledged reads back intact.
func TestStoreThrottled(t *testing.T) {
	eachCloudStore(t, nil, func(t *testing.T, cs cloudStore) {
		srv, f := startBehindFaults(t, cs, 0, faultPlan{})
		stored := newFaultBlob(7, 200<<10)
		if status, _ := pushFaultBlob(t, srv, "throttle", stored, false); status != 201 {
			t.Fatalf("push before throttling: %d", status)
		}
		other := newFaultBlob(8, 200<<10)
		for _, c := range cs.refusals {
			f.refuse(&c)
			r := httpDo(t, "GET", srv.URL()+"/v2/throttle/blobs/"+stored.dgst, nil)
			pull, pullRetry := r.StatusCode, r.Header.Get("Retry-After")
			push, pushRetry := pushFaultBlob(t, srv, "throttle", other, false)
			f.refuse(nil)
			for _, got := range []struct {
				what, retryAfter string
				status, want     int
			}{{"pull", pullRetry, pull, c.want}, {"push", pushRetry, push, c.want}} {
				if _, err := strconv.Atoi(got.retryAfter); got.status != got.want || err != nil {
					t.Errorf("%s while the store answers %d %q: %d, Retry-After %q; want %d with Retry-After",
						got.what, c.status, c.code, got.status, got.retryAfter, got.want)
				}
			}
		}
		t.Logf("the proxy refused %d requests", f.refused.Load())
		verifyStream(t, srv.URL()+"/v2/throttle/blobs/"+stored.dgst, stored.dgst, stored.n)
	})
}
