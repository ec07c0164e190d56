package gc

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
)

// defaultStorageRepositories bounds the repositories Report.Storage lists
// by name: the report is one stored object, read whole by `gc status` and
// the UI, and a registry may hold hundreds of thousands of repositories.
const defaultStorageRepositories = 1000

// emptyDigest is the digest of zero bytes: the one descriptor whose size 0
// is a real size rather than a missing one.
var emptyDigest = digest.FromBytes(nil)

// sharedOwner marks an object used by more than one repository.
const sharedOwner = -1

// tallied is one live object (blob or manifest, by digest) as the storage
// tally knows it. Two int32 indexes keep the per-object cost at a few
// words beyond the digest key, which the pass's live set holds anyway.
type tallied struct {
	size int64
	// owner is the index of the only repository using the object, or
	// sharedOwner.
	owner int32
	// last is the index of the last repository that counted it, so that
	// a repository counts each object once without a set of its own.
	last int32
}

// storageTally adds up the live content of each repository as the mark
// finds it. It holds one entry per live object and one per repository
// with live content: O(live objects + repositories) for the pass. A
// blob's size is its descriptor's size (verified against the blob when
// the manifest was pushed); a manifest's is its stored body's length.
type storageTally struct {
	logger *slog.Logger

	mu      sync.Mutex
	objects map[digest.Digest]tallied
	repos   []RepoStorage
	unique  int64
	// unsizedLogged: a descriptor without a size was logged (once a pass).
	unsizedLogged bool
}

func newStorageTally(logger *slog.Logger) *storageTally {
	return &storageTally{logger: logger, objects: map[digest.Digest]tallied{}}
}

// addRepo counts one repository's live manifests and blobs, each mapped
// to its size. A repository with nothing live is not listed.
func (t *storageTally) addRepo(name string, manifests, blobs map[digest.Digest]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	idx := int32(len(t.repos))
	rs := RepoStorage{Repository: name}
	count := func(d digest.Digest, size int64) bool {
		o, seen := t.objects[d]
		switch {
		case !seen:
			o = tallied{size: size, owner: idx, last: idx}
			t.unique += size
		case o.last == idx:
			return false // a digest both a blob and a manifest here
		default:
			o.last = idx
			if o.owner != idx {
				o.owner = sharedOwner
			}
		}
		t.objects[d] = o
		rs.Bytes += o.size
		return true
	}
	for d, size := range manifests {
		if count(d, size) {
			rs.Manifests++
		}
	}
	for d, size := range blobs {
		if size == 0 && d != emptyDigest && !t.unsizedLogged {
			t.unsizedLogged = true
			t.logger.Warn("gc: a live blob's descriptor has no size; it counts 0 bytes in the storage report (further ones are not logged)",
				"repo", name, "digest", d.String())
		}
		if count(d, size) {
			rs.Blobs++
		}
	}
	if rs.Manifests+rs.Blobs > 0 {
		t.repos = append(t.repos, rs)
	}
}

// report computes each repository's exclusive bytes, sorts the
// repositories by Bytes (largest first, then by name) and lists at most
// limit of them, summing the rest into Other*.
func (t *storageTally) report(limit int) *Storage {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Never nil: the report's JSON lists [] for an empty registry.
	repos := append(make([]RepoStorage, 0, len(t.repos)), t.repos...)
	for _, o := range t.objects {
		if o.owner != sharedOwner {
			repos[o.owner].ExclusiveBytes += o.size
		}
	}
	slices.SortFunc(repos, func(a, b RepoStorage) int {
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		return cmp.Compare(a.Repository, b.Repository)
	})
	s := &Storage{UniqueBytes: t.unique, Repositories: repos}
	if len(repos) > limit {
		s.Repositories = repos[:limit:limit]
		for _, r := range repos[limit:] {
			s.OtherRepositories++
			s.OtherBytes += r.Bytes
		}
	}
	return s
}

// storageRepositories is the bound on listed repositories this pass uses.
func (p *pass) storageRepositories() int {
	if p.cfg.StorageRepositories > 0 {
		return p.cfg.StorageRepositories
	}
	return defaultStorageRepositories
}
