package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func TestAccessFor(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         Access
	}{
		{"GET", "/v2/", Access{Action: ActionLogin}},
		{"GET", "/v2/_catalog", Access{Action: ActionCatalog}},
		{"GET", "/v2/a/b/tags/list", Access{"a/b", ActionPull}},
		{"HEAD", "/v2/a/manifests/v1", Access{"a", ActionPull}},
		{"GET", "/v2/a/blobs/sha256:x", Access{"a", ActionPull}},
		{"GET", "/v2/a/referrers/sha256:x", Access{"a", ActionPull}},
		{"PUT", "/v2/a/manifests/v1", Access{"a", ActionPush}},
		{"POST", "/v2/a/blobs/uploads/", Access{"a", ActionPush}},
		{"PATCH", "/v2/a/blobs/uploads/0123", Access{"a", ActionPush}},
		{"GET", "/v2/a/blobs/uploads/0123", Access{"a", ActionPush}},
		{"DELETE", "/v2/a/blobs/uploads/0123", Access{"a", ActionPush}},
		{"DELETE", "/v2/a/manifests/v1", Access{"a", ActionDelete}},
		{"DELETE", "/v2/a/blobs/sha256:x", Access{"a", ActionDelete}},
	} {
		if got := accessFor(parseRoute(tc.path), tc.method); got != tc.want {
			t.Errorf("%s %s: %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
	}
}

// denyPush refuses pushes and records what it was asked.
type denyPush struct {
	mu   sync.Mutex
	seen []Access
}

func (d *denyPush) Authorize(_ context.Context, _ *http.Request, a Access) error {
	d.mu.Lock()
	d.seen = append(d.seen, a)
	d.mu.Unlock()
	if a.Action == ActionPush {
		return newError(codeDenied, "push to %s is denied", a.Repository)
	}
	return nil
}

func TestAuthorizerDecidesBeforeTheHandler(t *testing.T) {
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	store := inmemory.New()
	auth := &denyPush{}
	reg, err := New(context.Background(), Config{}, Deps{Storage: store, Locking: locks, Authorizer: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	tr := &testRegistry{t: t, srv: srv, store: store}
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/v2/a/blobs/uploads/", 403, codeDenied},
		{"PUT", "/v2/a/manifests/v1", 403, codeDenied},
		{"GET", "/v2/a/manifests/v1", 404, codeManifestUnknown},
		{"GET", "/v2/_catalog", 200, ""},
		// Invalid names and unknown routes are answered before anyone is asked.
		{"PUT", "/v2/A/manifests/v1", 400, codeNameInvalid},
		{"GET", "/v2/x/nothing", 404, codeUnsupported},
	} {
		tr.expect(tr.do(tc.method, tc.path, nil), tc.status, tc.code)
	}
	if len(auth.seen) != 4 {
		t.Errorf("authorizer asked %d times (%v), want 4", len(auth.seen), auth.seen)
	}
	if keys := tr.keys(); len(keys) != 0 {
		t.Errorf("a denied push wrote %v", keys)
	}
}
