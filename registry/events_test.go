package registry

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// recordingSink keeps every event, without its request.
type recordingSink struct {
	mu     sync.Mutex
	events []Event
	reqs   []string // method of each event's request, "" for none
}

func (s *recordingSink) Emit(_ context.Context, e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	method := ""
	if e.Request != nil {
		method = e.Request.Method
	}
	e.Request = nil
	s.events = append(s.events, e)
	s.reqs = append(s.reqs, method)
}

// take returns and forgets the events so far.
func (s *recordingSink) take() ([]Event, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, r := s.events, s.reqs
	s.events, s.reqs = nil, nil
	return e, r
}

func newEventRegistry(t *testing.T, cfg Config) (*testRegistry, *Registry, *recordingSink) {
	t.Helper()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	sink := &recordingSink{}
	store := inmemory.New()
	reg, err := New(context.Background(), cfg, Deps{Storage: store, Locking: locks, Events: sink})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	return &testRegistry{t: t, srv: srv, store: store}, reg, sink
}

// TestEventsFollowAcknowledgedWrites: every stored write and every
// manifest GET emits exactly its event; HEADs, failures and refused
// requests emit nothing.
func TestEventsFollowAcknowledgedWrites(t *testing.T) {
	tr, _, sink := newEventRegistry(t, Config{LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second})
	layer := []byte("layer bytes")
	md, m := tr.imageManifest("app", layer)
	ld := digest.Digest(sha(layer))
	sink.take() // the blob pushes of imageManifest, checked below
	type step struct {
		name         string
		method, path string
		body         []byte
		headers      []string
		status       int
		want         []Event
	}
	steps := []step{
		{"push by tag with an extra tag", "PUT", "/v2/app/manifests/v1?tag=v2", m, []string{"Content-Type", mtOCIManifest}, 201, []Event{
			{Action: EventPush, Kind: EventManifest, Repository: "app", Digest: digest.Digest(md), MediaType: mtOCIManifest, Size: int64(len(m)), Tag: "v1"},
			{Action: EventPush, Kind: EventManifest, Repository: "app", Digest: digest.Digest(md), MediaType: mtOCIManifest, Size: int64(len(m)), Tag: "v2"},
		}},
		{"push by digest", "PUT", "/v2/app/manifests/" + md, m, []string{"Content-Type", mtOCIManifest}, 201, []Event{
			{Action: EventPush, Kind: EventManifest, Repository: "app", Digest: digest.Digest(md), MediaType: mtOCIManifest, Size: int64(len(m))},
		}},
		{"invalid manifest", "PUT", "/v2/app/manifests/v3", []byte("{"), []string{"Content-Type", mtOCIManifest}, 400, nil},
		{"pull by tag", "GET", "/v2/app/manifests/v1", nil, nil, 200, []Event{
			{Action: EventPull, Kind: EventManifest, Repository: "app", Digest: digest.Digest(md), MediaType: mtOCIManifest, Size: int64(len(m)), Tag: "v1"},
		}},
		{"HEAD is no pull", "HEAD", "/v2/app/manifests/v1", nil, nil, 200, nil},
		{"pull of a missing manifest", "GET", "/v2/app/manifests/nope", nil, nil, 404, nil},
		{"blob GET is no event", "GET", "/v2/app/blobs/" + ld.String(), nil, nil, 200, nil},
		{"mount", "POST", "/v2/copy/blobs/uploads/?mount=" + ld.String() + "&from=app", nil, nil, 201, []Event{
			{Action: EventMount, Kind: EventBlob, Repository: "copy", FromRepository: "app", Digest: ld},
		}},
		{"mount that falls back to an upload", "POST", "/v2/copy/blobs/uploads/?mount=" + ld.String() + "&from=nowhere", nil, nil, 202, nil},
		{"monolithic blob push", "POST", "/v2/copy/blobs/uploads/?digest=" + sha([]byte("mono")), []byte("mono"), nil, 201, []Event{
			{Action: EventPush, Kind: EventBlob, Repository: "copy", Digest: digest.Digest(sha([]byte("mono"))), Size: 4},
		}},
		{"blob delete", "DELETE", "/v2/copy/blobs/" + ld.String(), nil, nil, 202, []Event{
			{Action: EventDelete, Kind: EventBlob, Repository: "copy", Digest: ld},
		}},
		{"blob delete of a missing blob", "DELETE", "/v2/copy/blobs/" + ld.String(), nil, nil, 404, nil},
		{"tag delete", "DELETE", "/v2/app/manifests/v2", nil, nil, 202, []Event{
			{Action: EventDelete, Kind: EventTag, Repository: "app", Tag: "v2"},
		}},
		{"manifest delete", "DELETE", "/v2/app/manifests/" + md, nil, nil, 202, []Event{
			{Action: EventDelete, Kind: EventManifest, Repository: "app", Digest: digest.Digest(md)},
		}},
	}
	for _, s := range steps {
		tr.expect(tr.do(s.method, s.path, s.body, s.headers...), s.status, "")
		got, methods := sink.take()
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: events\n got %+v\nwant %+v", s.name, got, s.want)
		}
		for _, m := range methods {
			if m != s.method {
				t.Errorf("%s: event request method %q, want %q", s.name, m, s.method)
			}
		}
	}

	// A chunked upload emits its push at the final PUT.
	r := tr.do("POST", "/v2/app/blobs/uploads/", nil)
	tr.expect(r, 202, "")
	chunk := []byte("chunked blob")
	tr.expect(tr.do("PATCH", r.header.Get("Location"), chunk), 202, "")
	if got, _ := sink.take(); len(got) != 0 {
		t.Errorf("events before the upload finished: %+v", got)
	}
	tr.expect(tr.do("PUT", r.header.Get("Location")+"?digest="+sha(chunk), nil), 201, "")
	want := []Event{{Action: EventPush, Kind: EventBlob, Repository: "app", Digest: digest.Digest(sha(chunk)), Size: int64(len(chunk))}}
	if got, _ := sink.take(); !slices.Equal(got, want) {
		t.Errorf("chunked upload: events %+v, want %+v", got, want)
	}
}

// TestGCDeletionEvents: a GC pass emits a delete event, without a
// request, for every manifest and repository link it removed; a dry run
// emits none.
func TestGCDeletionEvents(t *testing.T) {
	tr, reg, sink := newEventRegistry(t, gcConfig("delete"))
	layer := []byte("gc layer")
	md, m := tr.imageManifest("gcapp", layer)
	tr.expect(tr.do("PUT", "/v2/gcapp/manifests/v1", m, "Content-Type", mtOCIManifest), 201, "")
	tr.expect(tr.do("DELETE", "/v2/gcapp/manifests/v1", nil), 202, "")
	sink.take()
	ageOut()
	if _, err := reg.RunGC(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got, _ := sink.take(); len(got) != 0 {
		t.Fatalf("dry run emitted %+v", got)
	}
	if _, err := reg.RunGC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	got, methods := sink.take()
	var manifests, links []digest.Digest
	for i, e := range got {
		if e.Action != EventDelete || e.Repository != "gcapp" || methods[i] != "" {
			t.Errorf("GC event %+v (request %q)", e, methods[i])
		}
		switch e.Kind {
		case EventManifest:
			manifests = append(manifests, e.Digest)
		case EventBlob:
			links = append(links, e.Digest)
		}
	}
	if !slices.Equal(manifests, []digest.Digest{digest.Digest(md)}) {
		t.Errorf("manifest deletions %v, want [%s]", manifests, md)
	}
	if !slices.Contains(links, digest.Digest(sha(layer))) || len(links) != 2 { // the layer and the config
		t.Errorf("link deletions %v, want the layer and the config", links)
	}
}
