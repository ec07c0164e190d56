package drivertest

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stratus-registry/stratus/storage"
)

// manyKeys is above the 1,000-key page of S3 and friends, so paging is
// exercised for real. The objects are tiny, so -short keeps the count.
const manyKeys = 1100

// trickyNames sort differently by full key than by path segment: '-' and
// '.' sort before '/', '0' after it. No name is both an object and a
// prefix of another ("a" and "a/b"), which filesystems cannot store.
var trickyNames = []string{"a-b", "a.b", "a/b.c", "a/b/x", "a/bc", "a0", "ab", "b/c/d/e", "b/c/d0"}

func (s *suite) testList(t *testing.T, e *env) {
	var tricky []string
	for _, n := range trickyNames {
		k := e.key("t/" + n)
		tricky = append(tricky, k)
		e.put(k, []byte(n))
	}
	sort.Strings(tricky)

	t.Run("prefix", func(t *testing.T) {
		tests := []struct {
			prefix string
			want   []string
		}{
			{"t/", trickyNames},
			{"t/a", []string{"a-b", "a.b", "a/b.c", "a/b/x", "a/bc", "a0", "ab"}},
			{"t/a/", []string{"a/b.c", "a/b/x", "a/bc"}},
			// A plain string prefix, as in S3: "a/b" matches "a/bc".
			{"t/a/b", []string{"a/b.c", "a/b/x", "a/bc"}},
			{"t/a/b/", []string{"a/b/x"}},
			{"t/a/b/x", []string{"a/b/x"}},
			{"t/b/c/", []string{"b/c/d/e", "b/c/d0"}},
			{"t/b/c/d", []string{"b/c/d/e", "b/c/d0"}},
			{"t/b/c/d/", []string{"b/c/d/e"}},
			{"t/z", nil},
			{"t/z/", nil},
			{"t/a/b/x/", nil},
			{"t/../", nil},
			{"nothing/", nil},
		}
		for _, tt := range tests {
			got := listAll(t, e, e.key(tt.prefix), "", 0)
			want := make([]string, len(tt.want))
			for i, n := range tt.want {
				want[i] = e.key("t/" + n)
			}
			if !slices.Equal(keysOf(got), want) {
				t.Errorf("List(%q) = %q; want %q", tt.prefix, keysOf(got), want)
			}
			for _, o := range got {
				if name := strings.TrimPrefix(o.Key, e.key("t/")); o.Size != int64(len(name)) {
					t.Errorf("List(%q): %q has size %d; want %d", tt.prefix, o.Key, o.Size, len(name))
				}
			}
		}
	})

	t.Run("startAfter", func(t *testing.T) {
		tests := []struct {
			startAfter string // under the prefix
			want       []string
		}{
			{"", trickyNames},
			{"t/a-b", trickyNames[1:]},
			{"t/a/b", trickyNames[2:]},  // not a key, a prefix of keys
			{"t/a/b/", trickyNames[3:]}, // inside a "directory"
			{"t/a/b/x", trickyNames[4:]},
			{"t/a/bb", trickyNames[4:]},
			{"t/a0zz", trickyNames[6:]},
			{"t/b/c/d/e", trickyNames[8:]},
			{"t/zzz", nil},
			{"s", trickyNames}, // before the prefix
		}
		for _, tt := range tests {
			want := make([]string, len(tt.want))
			for i, n := range tt.want {
				want[i] = e.key("t/" + n)
			}
			got := keysOf(listAll(t, e, e.key("t/"), e.key(tt.startAfter), 0))
			if !slices.Equal(got, want) {
				t.Errorf("List(t/, startAfter %q) = %q; want %q", tt.startAfter, got, want)
			}
		}
	})

	t.Run("paging small", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3, 4, len(tricky) - 1, len(tricky), len(tricky) + 1, 100} {
			got := keysOf(listAll(t, e, e.key("t/"), "", limit))
			if !slices.Equal(got, tricky) {
				t.Errorf("paged by %d: %q; want %q", limit, got, tricky)
			}
		}
		page, err := e.d.List(e.ctx, e.key("t/"), "", len(tricky)+1)
		if err != nil || page.More || len(page.Objects) != len(tricky) {
			t.Errorf("List with limit above the count = %d objects, More %v, %v; want %d, false", len(page.Objects), page.More, err, len(tricky))
		}
		page, err = e.d.List(e.ctx, e.key("t/"), "", 2)
		if err != nil || !page.More || len(page.Objects) != 2 {
			t.Errorf("List with limit 2 = %d objects, More %v, %v; want 2, true", len(page.Objects), page.More, err)
		}
	})

	many := make([]string, manyKeys)
	for i := range many {
		many[i] = e.key(fmt.Sprintf("many/%05d", i))
	}
	putAll(t, e, many)

	t.Run("more than 1000 keys", func(t *testing.T) {
		for _, limit := range []int{100, 333, 1000, 0, -1} {
			got := keysOf(listAll(t, e, e.key("many/"), "", limit))
			if !slices.Equal(got, many) {
				t.Fatalf("paged by %d: %d keys, want %d (first difference at %d)", limit, len(got), len(many), firstDiff(got, many))
			}
		}
		page, err := e.d.List(e.ctx, e.key("many/"), "", 0)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(page.Objects) == 0 || (len(page.Objects) < manyKeys && !page.More) {
			t.Fatalf("default page: %d objects, More %v; want a non-empty page and More unless all %d came back", len(page.Objects), page.More, manyKeys)
		}
		// The whole prefix includes the tricky keys after the many ones.
		all := keysOf(listAll(t, e, e.prefix, "", 250))
		want := append(slices.Clone(many), tricky...)
		if !slices.Equal(all, want) {
			t.Fatalf("List(prefix) paged by 250: %d keys, want %d (first difference at %d)", len(all), len(want), firstDiff(all, want))
		}
	})

	t.Run("DeleteBatch over 1000 keys with missing ones", func(t *testing.T) {
		batch := slices.Clone(many)
		for i := range 50 {
			batch = append(batch, e.key(fmt.Sprintf("many/missing-%d", i)), e.key(fmt.Sprintf("gone/%d", i)))
		}
		batch = append(batch, many[:10]...) // duplicates too
		if err := e.d.DeleteBatch(e.ctx, batch); err != nil {
			t.Fatalf("DeleteBatch(%d keys): %v", len(batch), err)
		}
		if left := listAll(t, e, e.key("many/"), "", 0); len(left) != 0 {
			t.Fatalf("after DeleteBatch %d keys remain, first %q", len(left), left[0].Key)
		}
		if got := keysOf(listAll(t, e, e.key("t/"), "", 0)); !slices.Equal(got, tricky) {
			t.Fatalf("DeleteBatch removed keys it was not given: left %q", got)
		}
	})
}

// listAll pages through a listing and checks the paging contract on the
// way: strictly increasing keys, all under the prefix, pages no larger than
// asked, a page with More set never empty.
func listAll(t *testing.T, e *env, prefix, startAfter string, limit int) []storage.Info {
	t.Helper()
	var all []storage.Info
	after := startAfter
	for pages := 0; ; pages++ {
		if pages > manyKeys+10 {
			t.Fatalf("List(%q) paged by %d did not end", prefix, limit)
		}
		page, err := e.d.List(e.ctx, prefix, after, limit)
		if err != nil {
			t.Fatalf("List(%q, %q, %d): %v", prefix, after, limit, err)
		}
		if limit > 0 && len(page.Objects) > limit {
			t.Fatalf("List(%q, %q, %d) returned %d objects", prefix, after, limit, len(page.Objects))
		}
		for _, o := range page.Objects {
			if !strings.HasPrefix(o.Key, prefix) {
				t.Fatalf("List(%q) returned %q outside the prefix", prefix, o.Key)
			}
			if o.Key <= after {
				t.Fatalf("List(%q, %q, %d) returned %q, not after %q", prefix, after, limit, o.Key, after)
			}
			after = o.Key
			all = append(all, o)
		}
		if !page.More {
			return all
		}
		if len(page.Objects) == 0 {
			t.Fatalf("List(%q, %q, %d): empty page with More set", prefix, after, limit)
		}
	}
}

func keysOf(infos []storage.Info) []string {
	if len(infos) == 0 {
		return nil
	}
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// putAll writes tiny objects with a few workers, so remote stores set up
// a thousand keys in reasonable time.
func putAll(t *testing.T, e *env, keys []string) {
	t.Helper()
	const workers = 8
	next := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range next {
				if _, err := e.d.Put(e.ctx, k, bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1}); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", k, err)
					return
				}
			}
		})
	}
	func() {
		defer close(next)
		for _, k := range keys {
			select {
			case next <- k:
			case err := <-errs:
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
