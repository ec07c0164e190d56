package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stratus-registry/stratus/notifications"
)

const hookSecret = "integration-hook-secret"

// hookEvent is one delivery a hookServer accepted.
type hookEvent struct {
	endpoint    string // the path it was posted to
	contentType string
	ceType      string // CloudEvents type; "" for the distribution format
	ce          notifications.CloudEvent
	event       notifications.Event
}

// hookServer is a webhook receiver on 127.0.0.1: every path is an
// endpoint, every delivery must carry a valid signature, and while down it
// answers 503.
type hookServer struct {
	t        *testing.T
	srv      *httptest.Server
	down     atomic.Bool
	attempts atomic.Int64
	mu       sync.Mutex
	events   []hookEvent
	// onEvent, if set, sees every accepted event (outside the lock).
	onEvent func(hookEvent)
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{t: t}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	h.attempts.Add(1)
	if h.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if err := notifications.Verify([]byte(hookSecret), r.Header, body, time.Now(), 5*time.Minute); err != nil {
		h.t.Errorf("%s: delivery refused: %v", r.URL.Path, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	e := hookEvent{endpoint: r.URL.Path, contentType: r.Header.Get("Content-Type")}
	if e.contentType == notifications.MediaTypeCloudEvent {
		if err := json.Unmarshal(body, &e.ce); err != nil {
			h.t.Errorf("cloud event %s: %v", body, err)
		}
		e.ceType, e.event = e.ce.Type, e.ce.Data
	} else {
		var env notifications.Envelope
		if err := json.Unmarshal(body, &env); err != nil || len(env.Events) != 1 {
			h.t.Errorf("envelope %s: %v", body, err)
			return
		}
		e.event = env.Events[0]
	}
	if got := r.Header.Get(notifications.EventIDHeader); got != e.event.ID {
		h.t.Errorf("%s header %q, event id %q", notifications.EventIDHeader, got, e.event.ID)
	}
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
	if h.onEvent != nil {
		h.onEvent(e)
	}
}

// received returns the events accepted on endpoint path so far.
func (h *hookServer) received(path string) []hookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookEvent
	for _, e := range h.events {
		if e.endpoint == path {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents waits until endpoint path has at least n events.
func (h *hookServer) waitEvents(t *testing.T, path string, n int, limit time.Duration) []hookEvent {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := h.received(path)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d events after %s, want %d: %+v", path, len(got), limit, n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookEndpoint is one entry of STRATUS_NOTIFICATIONS_ENDPOINTS.
type hookEndpoint struct {
	Name                  string                `json:"name"`
	URL                   string                `json:"url"`
	Secret                string                `json:"secret"`
	Format                string                `json:"format,omitempty"`
	DistributionMediaType string                `json:"distribution_media_type,omitempty"`
	Filters               notifications.Filters `json:"filters"`
}

// hookEnv configures the endpoints through the environment, the way a
// Kubernetes secret would.
func hookEnv(t *testing.T, eps ...hookEndpoint) string {
	t.Helper()
	b, err := json.Marshal(eps)
	if err != nil {
		t.Fatal(err)
	}
	return "STRATUS_NOTIFICATIONS_ENDPOINTS=" + string(b)
}

// fastRetries makes a test's retries and claims quick.
var fastRetries = []string{
	"--set", "notifications.backoff.min=50ms",
	"--set", "notifications.backoff.max=500ms",
	"--set", "notifications.claim_idle=2s",
}

// TestWebhookEventsBothFormats drives push, pull (GET, and a HEAD that must
// not count), mount and the three deletions through a real server, and
// checks every event in both formats, signed; a filtered endpoint gets only
// what its filters select.
func TestWebhookEventsBothFormats(t *testing.T) {
	hooks := newHookServer(t)
	ep := func(name, format string, f notifications.Filters) hookEndpoint {
		return hookEndpoint{Name: name, URL: hooks.srv.URL + "/" + name, Secret: hookSecret, Format: format, Filters: f}
	}
	v1 := ep("distv1", "distribution", notifications.Filters{Actions: []notifications.Action{"push"}})
	v1.DistributionMediaType = "v1"
	srv := startServer(t, append([]string{"--root", t.TempDir()}, fastRetries...), hookEnv(t,
		ep("dist", "distribution", notifications.Filters{}),
		ep("ce", "cloudevents", notifications.Filters{}),
		ep("filtered", "", notifications.Filters{Actions: []notifications.Action{"delete"}, Repositories: []string{"team/app"}}),
		v1,
	))

	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "other/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref(t, srv, "team/app:v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref(t, srv, "team/app:v1")); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	layers, _ := img.Layers()
	layer, _ := layers[0].Digest()
	do := func(method, path, id string, want int) {
		t.Helper()
		resp := httpDo(t, method, srv.URL()+path, nil, "X-Request-Id", id, "User-Agent", "webhook-test/1")
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s, want %d", method, path, resp.Status, want)
		}
	}
	do("POST", "/v2/team/copy/blobs/uploads/?mount="+layer.String()+"&from=team/app", "req-mount", http.StatusCreated)
	do("DELETE", "/v2/team/copy/blobs/"+layer.String(), "req-blob-delete", http.StatusAccepted)
	do("DELETE", "/v2/team/app/manifests/v1", "req-tag-delete", http.StatusAccepted)
	do("DELETE", "/v2/team/app/manifests/"+d.String(), "req-manifest-delete", http.StatusAccepted)

	type want struct {
		action, ceType, repo, tag, digest, from, method, reqID string
	}
	wants := []want{
		{"push", notifications.TypeImagePushed, "team/app", "v1", d.String(), "", "PUT", ""},
		{"push", notifications.TypeImagePushed, "other/app", "v1", d.String(), "", "PUT", ""},
		{"pull", notifications.TypeImagePulled, "team/app", "v1", d.String(), "", "GET", ""},
		{"mount", notifications.TypeBlobMounted, "team/copy", "", layer.String(), "team/app", "POST", "req-mount"},
		{"delete", notifications.TypeBlobDeleted, "team/copy", "", layer.String(), "", "DELETE", "req-blob-delete"},
		{"delete", notifications.TypeTagDeleted, "team/app", "v1", "", "", "DELETE", "req-tag-delete"},
		{"delete", notifications.TypeImageDeleted, "team/app", "", d.String(), "", "DELETE", "req-manifest-delete"},
	}
	for _, path := range []string{"/dist", "/ce"} {
		// One replica with the in-process queue delivers in order, so a
		// pull event from the HEAD would sit between the pull and the mount.
		hooks.waitEvents(t, path, len(wants), 60*time.Second)
		time.Sleep(200 * time.Millisecond)
		got := hooks.received(path)
		if len(got) != len(wants) {
			t.Fatalf("%s: %d events, want %d (a HEAD must not count as a pull): %+v", path, len(got), len(wants), got)
		}
		ids := map[string]bool{}
		for i, w := range wants {
			g, e := got[i], got[i].event
			where := fmt.Sprintf("%s event %d (%s %s)", path, i, w.action, w.repo)
			if string(e.Action) != w.action || e.Target.Repository != w.repo || e.Target.Tag != w.tag ||
				e.Target.Digest.String() != w.digest || e.Target.FromRepository != w.from || e.Request.Method != w.method {
				t.Errorf("%s: got %+v", where, e)
			}
			if w.reqID != "" && (e.Request.ID != w.reqID || e.Request.UserAgent != "webhook-test/1") {
				t.Errorf("%s: request %+v, want id %s", where, e.Request, w.reqID)
			}
			if e.Request.ID == "" || e.Request.Addr == "" || e.Request.Host != srv.Addr || e.Source.InstanceID == "" ||
				e.ID == "" || ids[e.ID] || time.Since(e.Timestamp) > time.Minute {
				t.Errorf("%s: incomplete envelope %+v", where, e)
			}
			ids[e.ID] = true
			if w.action == "push" || w.action == "pull" {
				if e.Target.MediaType != string(mt) || e.Target.Size != int64(len(raw)) ||
					e.Target.URL != "http://"+srv.Addr+"/v2/"+w.repo+"/manifests/"+d.String() {
					t.Errorf("%s: target %+v", where, e.Target)
				}
			}
			if path == "/ce" {
				if g.contentType != notifications.MediaTypeCloudEvent || g.ceType != w.ceType || g.ce.SpecVersion != "1.0" ||
					g.ce.ID != e.ID || g.ce.Source == "" || !strings.HasPrefix(g.ce.Subject, w.repo) || g.ce.DataContentType != "application/json" {
					t.Errorf("%s: cloud event %+v", where, g.ce)
				}
			} else if g.contentType != notifications.MediaTypeEventsV2 {
				t.Errorf("%s: Content-Type %q", where, g.contentType)
			}
		}
	}
	hooks.waitEvents(t, "/filtered", 2, 30*time.Second)
	hooks.waitEvents(t, "/distv1", 2, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	if filtered := hooks.received("/filtered"); len(filtered) != 2 || filtered[0].event.Target.Tag != "v1" || filtered[1].event.Target.Digest.String() != d.String() {
		t.Errorf("filtered endpoint got %+v, want the tag and the manifest deletion in team/app", filtered)
	}
	if pushes := hooks.received("/distv1"); len(pushes) != 2 || pushes[0].contentType != notifications.MediaTypeEventsV1 {
		t.Errorf("push-only v1 endpoint got %+v", pushes)
	}
}
