package transfer

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

// recordingPins records every key pinned and refuses the keys in refuse,
// as the lock store does for keys GC has claimed.
type recordingPins struct {
	content.Pins
	mu     sync.Mutex
	pinned map[string]bool
	refuse map[string]bool
}

func (p *recordingPins) Pin(ctx context.Context, key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse[key] {
		return locking.ErrDeleting
	}
	p.pinned[key] = true
	return p.Pins.Pin(ctx, key)
}

// TestImportPins checks that an import pins what a push pins (each blob
// digest, each link, each manifest) and stops, writing nothing of a
// manifest, when GC has claimed its key.
func TestImportPins(t *testing.T) {
	ctx := context.Background()
	src := newTestStore(t)
	f := buildFixture(t, src)
	out := filepath.Join(t.TempDir(), "layout")
	if _, err := Export(ctx, src.store, out, Filter{Repos: []string{"app/web"}, Tags: []string{"v1"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		refuse string
	}{
		{"nothing refused", ""},
		{"manifest being collected", content.ManifestKey("app/web", f.web1.Digest)},
		{"shared layer being collected", f.shared.Digest.String()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := filesystem.New(filesystem.Config{Root: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			pins := &recordingPins{Pins: memory.New(), pinned: map[string]bool{}, refuse: map[string]bool{tc.refuse: true}}
			store, err := content.New(d, pins, content.Options{MaxManifestSize: maxManifest})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Import(ctx, store, out, testOpts)
			if tc.refuse != "" {
				if !errors.Is(err, content.ErrBeingDeleted) && !errors.Is(err, content.ErrBlobUnknown) && !errors.Is(err, content.ErrManifestUnknown) {
					t.Fatalf("import with %s claimed by GC: %v", tc.refuse, err)
				}
				repo, _ := store.Repository("app/web")
				if _, err := repo.GetManifest(ctx, f.web1.Digest); !errors.Is(err, content.ErrManifestUnknown) {
					t.Fatalf("manifest written although GC held %s: %v", tc.refuse, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{f.shared.Digest.String(), content.LinkKey("app/web", f.shared.Digest), content.ManifestKey("app/web", f.web1.Digest)} {
				if !pins.pinned[k] {
					t.Errorf("import did not pin %s", k)
				}
			}
		})
	}
}
