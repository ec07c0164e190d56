package content

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// TestEachPageShardedCoversEveryKey: the concurrent ranges list every key
// under the prefix exactly once, whatever its shape (keys on a bound, keys
// that are not hex, more keys than one listing page), and nothing outside
// the prefix.
func TestEachPageShardedCoversEveryKey(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	t.Cleanup(func() { d.Close() })
	var want []string
	put := func(key string) {
		if _, err := d.Put(ctx, key, strings.NewReader(""), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20000 { // about 1,250 per range: several listing pages each
		want = append(want, fmt.Sprintf("data/%032x", uint64(i)*0x9e3779b97f4a7c15))
	}
	// On a bound, just after one, before the first, after the last, and
	// keys of no expected shape.
	want = append(want, "data/1", "data/10", "data/0", "data/00", "data/f", "data/fz", "data/zz", "data/-x", "data/A")
	for _, k := range want {
		put(k)
	}
	put("dat")
	put("datarefs/1")
	slices.Sort(want)
	for _, tc := range []struct {
		name string
		conc int
	}{
		{"one range at a time", 1},
		{"four at a time", 4},
		{"all at once", 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t, d)
			var (
				mu  sync.Mutex
				got []string
			)
			err := s.eachPageSharded(ctx, dataPrefix, hexBounds(dataPrefix), tc.conc, func(objs []storage.Info) error {
				mu.Lock()
				defer mu.Unlock()
				for _, o := range objs {
					got = append(got, o.Key)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d keys, want %d; first differences: %v", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d got %q want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
