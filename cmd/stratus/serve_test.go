package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// brokenStat fails the readiness probe the way a filesystem driver does,
// with an absolute path in the error.
type brokenStat struct{ storage.Driver }

func (brokenStat) Stat(context.Context, string) (storage.Info, error) {
	return storage.Info{}, &storage.OpError{Op: "stat", Driver: "filesystem", Key: "health/readiness-probe",
		Err: errors.New("stat /srv/registry/secret-root/health/readiness-probe: permission denied")}
}

func TestReadinessDoesNotLeakErrors(t *testing.T) {
	tests := []struct {
		name   string
		driver storage.Driver
		status int
		body   string
	}{
		{"healthy", inmemory.New(), 200, "ok"},
		{"storage failing", brokenStat{inmemory.New()}, 503, "not ready: storage backend unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			locks := memory.New()
			defer locks.Close()
			reg, err := registry.New(context.Background(), registry.Config{}, registry.Deps{Storage: tt.driver, Locking: locks})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(readiness(reg, tt.driver, locks, slog.New(slog.DiscardHandler)))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.body) || strings.Contains(string(body), "/srv/") {
				t.Errorf("readyz = %d %q; want %d containing %q and no path", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

// fullDisk fails writes the way the filesystem driver reports ENOSPC.
type fullDisk struct{ storage.Driver }

func (fullDisk) Put(_ context.Context, key string, _ io.Reader, _ storage.PutOptions) (storage.Info, error) {
	return storage.Info{}, &storage.OpError{Op: "put", Driver: "filesystem", Key: key, Err: fmt.Errorf("%w: no space left on device", storage.ErrFull)}
}

func TestReadinessReportsFullStorage(t *testing.T) {
	d := fullDisk{inmemory.New()}
	locks := memory.New()
	defer locks.Close()
	reg, err := registry.New(context.Background(), registry.Config{}, registry.Deps{Storage: d, Locking: locks})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(reg)
	defer api.Close()
	resp, err := http.Post(api.URL+"/v2/app/blobs/uploads/?digest=sha256:"+strings.Repeat("0", 64), "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("push on a full store: %s; want 507", resp.Status)
	}
	ready := httptest.NewServer(readiness(reg, d, locks, slog.New(slog.DiscardHandler)))
	defer ready.Close()
	resp, err = http.Get(ready.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "storage full") {
		t.Errorf("readyz after a full-disk failure = %d %q; want 503 storage full", resp.StatusCode, body)
	}
}
