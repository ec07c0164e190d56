package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/lockingtest"
)

// TestSIGTERMDuringChunkedUpload: a replica gets SIGTERM while it streams a
// chunk of an upload. It fails /readyz at once, finishes the chunk (202),
// exits cleanly within the drain timeout, and the client finishes the
// upload through the other replica.
func TestSIGTERMDuringChunkedUpload(t *testing.T) {
	const drainTimeout = 10 * time.Second
	root := t.TempDir()
	redis := lockingtest.StartRedis(t, lockingtest.RedisTCP())
	args := []string{"--root", root, "--set", "redis.addrs=" + redis.Addr(),
		"--set", "http.shutdown_timeout=" + drainTimeout.String(),
		"--set", "http.shutdown_delay=1s"}
	a, b := startServer(t, args), startServer(t, args)

	blob, dgst := randomBlob(13, 3<<20)
	resp := httpDo(t, "POST", "http://"+a.Addr+"/v2/drain/blobs/uploads/", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	first := 1 << 20
	r1 := httpDo(t, "PATCH", "http://"+a.Addr+loc, blob[:first], "Content-Range", fmt.Sprintf("0-%d", first-1))
	if r1.StatusCode != 202 {
		t.Fatalf("first PATCH: %s", r1.Status)
	}
	loc = r1.Header.Get("Location")

	// The second chunk trickles into replica a (~1.3 s); SIGTERM lands in
	// the middle of it.
	second := 2 << 20
	sr := &slowReader{r: bytes.NewReader(blob[first:second]), started: make(chan struct{})}
	req, _ := http.NewRequest("PATCH", "http://"+a.Addr+loc, sr)
	req.ContentLength = int64(second - first)
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", first, second-1))
	type answer struct {
		status int
		loc    string
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		resp.Body.Close()
		answers <- answer{status: resp.StatusCode, loc: resp.Header.Get("Location")}
	}()
	<-sr.started
	time.Sleep(200 * time.Millisecond)
	sigterm := time.Now()
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: /readyz fails while the listener is still open.
	if body := waitReady(t, a, http.StatusServiceUnavailable, time.Second); !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while draining: %q", body)
	}
	ans := <-answers
	if ans.err != nil || ans.status != 202 {
		t.Fatalf("the in-flight chunk on the draining replica: %d %v; want 202", ans.status, ans.err)
	}
	select {
	case <-a.done:
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatalf("replica still running %v after SIGTERM", time.Since(sigterm))
	}
	exited := time.Since(sigterm)
	if code := a.proc.ExitCode(); code != 0 {
		t.Errorf("drained replica exited with %d; want 0:\n%s", code, tail(a.Log(), 20))
	}
	if exited > drainTimeout+2*time.Second {
		t.Errorf("exit took %v; want within the %v drain timeout (+1s delay)", exited, drainTimeout)
	}
	if !strings.Contains(a.Log(), "public listener drained") {
		t.Errorf("no drain line in the log:\n%s", tail(a.Log(), 20))
	}
	// The client goes on through replica b, from where the upload stands.
	st := httpDo(t, "GET", "http://"+b.Addr+ans.loc, nil)
	if st.StatusCode != 204 || st.Header.Get("Range") != fmt.Sprintf("0-%d", second-1) {
		t.Fatalf("upload status on b: %s Range %q; want 204 0-%d", st.Status, st.Header.Get("Range"), second-1)
	}
	if r := httpDo(t, "PATCH", "http://"+b.Addr+ans.loc, blob[second:], "Content-Range", fmt.Sprintf("%d-%d", second, len(blob)-1)); r.StatusCode != 202 {
		t.Fatalf("last PATCH on b: %s", r.Status)
	} else {
		loc = r.Header.Get("Location")
	}
	if r := httpDo(t, "PUT", "http://"+b.Addr+loc+"?digest="+dgst, nil); r.StatusCode != 201 {
		t.Fatalf("PUT on b: %s", r.Status)
	}
	verifyBlob(t, "http://"+b.Addr+"/v2/drain/blobs/"+dgst, blob)
	t.Logf("SIGTERM to exit: %v", exited)
}
