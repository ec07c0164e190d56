package registry

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/ratelimit"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

func newSlotLimitedRegistry(t *testing.T, limit int) *testRegistry {
	t.Helper()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	store := inmemory.New()
	cfg := Config{LeaseTTL: 2 * time.Second, LeaseWait: 3 * time.Second}
	slots := ratelimit.UploadLimit{Slots: ratelimit.NewMemorySlots(), Limit: limit}
	reg, err := New(context.Background(), cfg, Deps{Storage: store, Locking: locks, UploadSlots: slots})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	return &testRegistry{t: t, srv: srv, store: store}
}

func TestUploadSessionsLimitedPerRepository(t *testing.T) {
	tr := newSlotLimitedRegistry(t, 2)
	start := func(repo string) resp { return tr.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil) }
	first, second := start("team/app"), start("team/app")
	tr.expect(first, http.StatusAccepted, "")
	tr.expect(second, http.StatusAccepted, "")

	over := start("team/app")
	tr.expect(over, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	if ra := over.header.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After = %q, want 30 (the cap: slots free when uploads finish)", ra)
	}
	tr.expect(start("team/other"), http.StatusAccepted, "") // another repository has its own limit
	// Monolithic uploads open no session and are not counted.
	blob := []byte("monolithic")
	tr.expect(tr.do(http.MethodPost, fmt.Sprintf("/v2/team/app/blobs/uploads/?digest=sha256:%x", sha256.Sum256(blob)), blob), http.StatusCreated, "")

	// A committed upload frees its slot.
	data := []byte("layer bytes")
	loc := first.header.Get("Location")
	tr.expect(tr.do(http.MethodPut, fmt.Sprintf("%s?digest=sha256:%x", loc, sha256.Sum256(data)), data), http.StatusCreated, "")
	third := start("team/app")
	tr.expect(third, http.StatusAccepted, "")
	tr.expect(start("team/app"), http.StatusTooManyRequests, "TOOMANYREQUESTS")

	// So does a cancelled one.
	tr.expect(tr.do(http.MethodDelete, second.header.Get("Location"), nil), http.StatusNoContent, "")
	tr.expect(start("team/app"), http.StatusAccepted, "")
	tr.expect(start("team/app"), http.StatusTooManyRequests, "TOOMANYREQUESTS")
}
