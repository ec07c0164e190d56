package gc

import (
	"bytes"
	"cmp"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestStorageTally(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	type repo struct {
		name             string
		manifests, blobs map[digest.Digest]int64
	}
	for _, tc := range []struct {
		name     string
		repos    []repo
		limit    int
		want     Storage
		warnings int
	}{{
		name: "empty registry lists no repository",
		want: Storage{Repositories: []RepoStorage{}},
	}, {
		name: "repository with nothing live is not listed",
		repos: []repo{
			{name: "empty"},
			{name: "a", manifests: map[digest.Digest]int64{d("m"): 10}, blobs: map[digest.Digest]int64{d("l"): 5}},
		},
		want: Storage{UniqueBytes: 15, Repositories: []RepoStorage{{Repository: "a", Bytes: 15, ExclusiveBytes: 15, Blobs: 1, Manifests: 1}}},
	}, {
		name: "unsized descriptors count 0 and are logged once; the empty blob is not unsized",
		repos: []repo{
			{name: "a", blobs: map[digest.Digest]int64{d("x"): 0, d("y"): 0, digest.FromBytes(nil): 0, d("l"): 7}},
		},
		want:     Storage{UniqueBytes: 7, Repositories: []RepoStorage{{Repository: "a", Bytes: 7, ExclusiveBytes: 7, Blobs: 4}}},
		warnings: 1,
	}, {
		name: "a digest that is both blob and manifest counts once",
		repos: []repo{
			{name: "a", manifests: map[digest.Digest]int64{d("same"): 9}, blobs: map[digest.Digest]int64{d("same"): 9}},
		},
		want: Storage{UniqueBytes: 9, Repositories: []RepoStorage{{Repository: "a", Bytes: 9, ExclusiveBytes: 9, Manifests: 1}}},
	}, {
		name: "equal sizes sort by name; the rest is summed",
		repos: []repo{
			{name: "c", blobs: map[digest.Digest]int64{d("c"): 4}},
			{name: "b", blobs: map[digest.Digest]int64{d("b"): 4}},
			{name: "a", blobs: map[digest.Digest]int64{d("a"): 1, d("b"): 4}},
		},
		limit: 2,
		want: Storage{UniqueBytes: 9, OtherRepositories: 1, OtherBytes: 4, Repositories: []RepoStorage{
			{Repository: "a", Bytes: 5, ExclusiveBytes: 1, Blobs: 2},
			{Repository: "b", Bytes: 4, Blobs: 1},
		}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			tally := newStorageTally(slog.New(slog.NewTextHandler(&log, nil)))
			for _, r := range tc.repos {
				tally.addRepo(r.name, r.manifests, r.blobs)
			}
			got := tally.report(cmp.Or(tc.limit, defaultStorageRepositories))
			if got.UniqueBytes != tc.want.UniqueBytes || got.OtherRepositories != tc.want.OtherRepositories || got.OtherBytes != tc.want.OtherBytes ||
				!slices.Equal(got.Repositories, tc.want.Repositories) || got.Repositories == nil {
				t.Errorf("report %+v, want %+v", *got, tc.want)
			}
			if n := strings.Count(log.String(), "has no size"); n != tc.warnings {
				t.Errorf("%d warnings, want %d:\n%s", n, tc.warnings, log.String())
			}
		})
	}
}
