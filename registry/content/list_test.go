package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// TestShardedListingsCoverTheLayout: the sharded listings of blob records,
// data objects and data index entries return every key Stratus writes
// there exactly once (sha256 and sha512 records, more keys than one
// listing page per shard), and nothing of the neighbouring prefixes.
func TestShardedListingsCoverTheLayout(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	t.Cleanup(func() { d.Close() })
	put := func(key string) {
		if _, err := d.Put(ctx, key, strings.NewReader(""), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{}
	for i := range 20000 { // about 1,250 keys per shard: several listing pages each
		var b [16]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		dg := digest.SHA256.FromString(fmt.Sprint(i))
		if i%100 == 0 {
			dg = digest.SHA512.FromString(fmt.Sprint(i))
		}
		for kind, key := range map[string]string{"records": BlobRecordKey(dg), "data": DataKey(id), "index": DataIndexKey(id, dg)} {
			put(key)
			want[kind] = append(want[kind], key)
		}
	}
	for _, k := range []string{"blob", "blobs/sha384/ab/cd", "dat", "data", "datarefs", "gc/last-run.json"} {
		put(k)
	}
	s, _ := newTestStore(t, d)
	for _, tc := range []struct {
		kind   string
		shards []string
	}{
		{"records", recordShards()},
		{"data", hexShards(dataPrefix)},
		{"index", hexShards(dataIndexPrefix)},
	} {
		for _, conc := range []int{1, 4, 64} {
			t.Run(fmt.Sprintf("%s/%d at a time", tc.kind, conc), func(t *testing.T) {
				var (
					mu  sync.Mutex
					got []string
				)
				if err := s.eachPageSharded(ctx, tc.shards, conc, func(objs []storage.Info) error {
					mu.Lock()
					defer mu.Unlock()
					for _, o := range objs {
						got = append(got, o.Key)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				w := slices.Sorted(slices.Values(want[tc.kind]))
				if !slices.Equal(got, w) {
					t.Fatalf("listed %d keys, want %d: %s", len(got), len(w), firstDiff(got, w))
				}
			})
		}
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
