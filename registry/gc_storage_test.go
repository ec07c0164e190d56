package registry

import (
	"cmp"
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/gc"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

// storageModel is what a test pushed and expects live, per repository:
// digest -> size and kind. The expected report is computed from it alone,
// never from the collector's figures.
type storageModel map[string]map[string]modelObject

type modelObject struct {
	size     int64
	manifest bool
}

func (m storageModel) blobs(repo string, bs ...[]byte) {
	for _, b := range bs {
		m.add(repo, b, false)
	}
}

func (m storageModel) add(repo string, b []byte, manifest bool) {
	if m[repo] == nil {
		m[repo] = map[string]modelObject{}
	}
	m[repo][sha(b)] = modelObject{size: int64(len(b)), manifest: manifest}
}

// want is the report the model implies, listing at most limit repositories.
func (m storageModel) want(limit int) gc.Storage {
	users := map[string]int{}
	sizes := map[string]int64{}
	for _, objs := range m {
		for d, o := range objs {
			users[d]++
			sizes[d] = o.size
		}
	}
	var s gc.Storage
	for _, size := range sizes {
		s.UniqueBytes += size
	}
	var repos []gc.RepoStorage
	for name, objs := range m {
		r := gc.RepoStorage{Repository: name}
		for d, o := range objs {
			r.Bytes += o.size
			if users[d] == 1 {
				r.ExclusiveBytes += o.size
			}
			if o.manifest {
				r.Manifests++
			} else {
				r.Blobs++
			}
		}
		repos = append(repos, r)
	}
	slices.SortFunc(repos, func(a, b gc.RepoStorage) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Repository, b.Repository))
	})
	s.Repositories = repos
	if len(repos) > limit {
		s.Repositories = repos[:limit]
		for _, r := range repos[limit:] {
			s.OtherRepositories++
			s.OtherBytes += r.Bytes
		}
	}
	return s
}

// storageImage pushes an image manifest of a config and layers to repo
// (tagged when tag is set) and returns its digest and body.
func (tr *testRegistry) storageImage(repo, tag string, config []byte, layers ...[]byte) (string, []byte) {
	tr.t.Helper()
	cd := tr.pushBlob(repo, config)
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, tr.pushBlob(repo, l), len(l)))
	}
	body := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}`,
		mtOCIManifest, cd, len(config), strings.Join(ls, ",")))
	ref := cmp.Or(tag, sha(body))
	tr.expect(tr.do("PUT", "/v2/"+repo+"/manifests/"+ref, body, "Content-Type", mtOCIManifest), 201, "")
	return sha(body), body
}

// liveImage pushes an image and records all of it as live in m.
func (tr *testRegistry) liveImage(m storageModel, repo, tag string, config []byte, layers ...[]byte) (string, []byte) {
	d, body := tr.storageImage(repo, tag, config, layers...)
	m.add(repo, body, true)
	m.blobs(repo, append([][]byte{config}, layers...)...)
	return d, body
}

// dropTags is a retention policy deleting every tag named old-*.
type dropTags struct{}

func (dropTags) Decide(_ string, tags []gc.Tag, _ time.Time) []gc.TagDecision {
	var out []gc.TagDecision
	for _, t := range tags {
		out = append(out, gc.TagDecision{Tag: t.Name, Delete: strings.HasPrefix(t.Name, "old-"), Reason: "test rule"})
	}
	return out
}

func (dropTags) UntaggedAge(string) (time.Duration, bool) { return 0, false }

func TestGCStorageReport(t *testing.T) {
	layer := func(name string) []byte { return []byte("layer " + name + " " + strings.Repeat(name, 37)) }
	config := func(name string) []byte {
		return []byte(`{"architecture":"amd64","os":"linux","stratus-test":"` + name + `"}`)
	}
	for _, tc := range []storageCase{{
		name: "shared base layer counted once in unique bytes and in full in each repository",
		push: func(tr *testRegistry, m storageModel) {
			base := layer("base")
			tr.liveImage(m, "team/a", "v1", config("a"), base, layer("a"))
			tr.liveImage(m, "team/b", "v1", config("b"), base, layer("b"), layer("b2"))
		},
		check: func(t *testing.T, rep *gc.Report) {
			s := rep.Storage
			base := int64(len(layer("base")))
			for _, r := range s.Repositories {
				if r.Bytes-r.ExclusiveBytes != base {
					t.Errorf("%s: bytes %d - exclusive %d != the shared base layer's %d", r.Repository, r.Bytes, r.ExclusiveBytes, base)
				}
			}
			if sum := s.Repositories[0].Bytes + s.Repositories[1].Bytes; s.UniqueBytes != sum-base {
				t.Errorf("unique bytes %d, want %d (both repositories less the base once)", s.UniqueBytes, sum-base)
			}
		},
	}, {
		name: "index with two platform manifests",
		push: func(tr *testRegistry, m storageModel) {
			var descs []string
			for _, arch := range []string{"amd64", "arm64"} {
				d, body := tr.liveImage(m, "multi", "", config(arch), layer(arch))
				descs = append(descs, fmt.Sprintf(`{"mediaType":"%s","digest":"%s","size":%d,"platform":{"os":"linux","architecture":"%s"}}`, mtOCIManifest, d, len(body), arch))
			}
			ix := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}`, mtOCIIndex, strings.Join(descs, ",")))
			tr.expect(tr.do("PUT", "/v2/multi/manifests/latest", ix, "Content-Type", mtOCIIndex), 201, "")
			m.add("multi", ix, true)
		},
	}, {
		name:          "referrer counted when keep_referrers keeps it",
		keepReferrers: true,
		push: func(tr *testRegistry, m storageModel) {
			subject, body := tr.liveImage(m, "signed", "v1", config("signed"), layer("signed"))
			sigCfg, sigLayer := []byte(`{"sig":"config"}`), []byte("signature payload")
			sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%d}],"subject":{"mediaType":"%s","digest":"%s","size":%d}}`,
				mtOCIManifest, tr.pushBlob("signed", sigCfg), len(sigCfg), tr.pushBlob("signed", sigLayer), len(sigLayer), mtOCIManifest, subject, len(body)))
			tr.expect(tr.do("PUT", "/v2/signed/manifests/"+sha(sig), sig, "Content-Type", mtOCIManifest), 201, "")
			m.add("signed", sig, true)
			m.blobs("signed", sigCfg, sigLayer)
		},
	}, {
		name: "referrer not counted without keep_referrers",
		push: func(tr *testRegistry, m storageModel) {
			subject, body := tr.liveImage(m, "signed", "v1", config("signed"), layer("signed"))
			sigCfg := []byte(`{"sig":"config"}`)
			sig := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[],"subject":{"mediaType":"%s","digest":"%s","size":%d}}`,
				mtOCIManifest, tr.pushBlob("signed", sigCfg), len(sigCfg), mtOCIManifest, subject, len(body)))
			tr.expect(tr.do("PUT", "/v2/signed/manifests/"+sha(sig), sig, "Content-Type", mtOCIManifest), 201, "")
		},
	}, {
		name: "untagged manifest reclaimed by the pass is not counted",
		push: func(tr *testRegistry, m storageModel) {
			tr.liveImage(m, "app", "v1", config("kept"), layer("kept"))
			tr.storageImage("app", "v2", config("dropped"), layer("dropped"))
			tr.expect(tr.do("DELETE", "/v2/app/manifests/v2", nil), 202, "")
			// A repository whose only manifest the API deleted is not
			// listed (the pass then drops its links and the repository).
			d, _ := tr.storageImage("gone", "", config("gone"), layer("gone"))
			tr.expect(tr.do("DELETE", "/v2/gone/manifests/"+d, nil), 202, "")
		},
		check: func(t *testing.T, rep *gc.Report) {
			if rep.ManifestsDeleted != 1 || rep.ReposRemoved != 1 {
				t.Errorf("the pass deleted %d manifests and %d repositories, want 1 each", rep.ManifestsDeleted, rep.ReposRemoved)
			}
		},
	}, {
		name:      "retention-deleted tags not counted",
		retention: dropTags{},
		push: func(tr *testRegistry, m storageModel) {
			tr.liveImage(m, "ci/app", "release-1", config("release"), layer("release"))
			tr.storageImage("ci/app", "old-1", config("old-1"), layer("old-1"))
			tr.storageImage("ci/app", "old-2", config("old-2"), layer("old-2"))
		},
		check: func(t *testing.T, rep *gc.Report) {
			if rep.TagsDeleted != 2 || rep.ManifestsDeleted != 2 {
				t.Errorf("retention deleted %d tags and %d manifests, want 2 each", rep.TagsDeleted, rep.ManifestsDeleted)
			}
		},
	}, {
		name:      "dry run counts what the pass would keep",
		retention: dropTags{},
		dryRun:    true,
		push: func(tr *testRegistry, m storageModel) {
			tr.liveImage(m, "ci/app", "release-1", config("release"), layer("release"))
			tr.storageImage("ci/app", "old-1", config("old-1"), layer("old-1"))
			tr.storageImage("other", "old-1", config("other"), layer("other"))
			tr.expect(tr.do("DELETE", "/v2/other/manifests/old-1", nil), 202, "")
		},
	}, {
		name:  "at most the bound is listed, the rest summed",
		limit: 2,
		push: func(tr *testRegistry, m storageModel) {
			shared := layer("shared")
			for i := range 5 {
				repo := fmt.Sprintf("r%d", i)
				tr.liveImage(m, repo, "v1", config(repo), shared, []byte(strings.Repeat("x", 100*(i+1))))
			}
		},
		check: func(t *testing.T, rep *gc.Report) {
			s := rep.Storage
			if len(s.Repositories) != 2 || s.Repositories[0].Repository != "r4" || s.OtherRepositories != 3 {
				t.Errorf("listed %+v and %d others; want r4, r3 and 3 others", s.Repositories, s.OtherRepositories)
			}
		},
	}} {
		t.Run(tc.name, tc.run)
	}
}

// storageCase is one registry state the storage report is checked on.
type storageCase struct {
	name          string
	keepReferrers bool
	retention     gc.Retention
	dryRun        bool
	limit         int // 0: the default bound
	// push builds the state and records in m what must count as live.
	push func(tr *testRegistry, m storageModel)
	// check, if set, asserts figures of the case in plain arithmetic.
	check func(t *testing.T, rep *gc.Report)
}

// run pushes the case's content into a filesystem store through the API,
// runs one pass and compares its report, and the stored one, with the
// model.
func (tc storageCase) run(t *testing.T) {
	store, err := filesystem.New(filesystem.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	cfg := gcConfig("delete")
	cfg.GC.KeepReferrers = &tc.keepReferrers
	reg, err := New(context.Background(), cfg, Deps{Storage: store, Locking: locks, Retention: tc.retention})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	tr := &testRegistry{t: t, srv: srv, store: store}
	m := storageModel{}
	tc.push(tr, m)
	ageOut()

	c, err := gc.New(reg.content, reg.locks, gc.Config{
		Grace: testGrace, Untagged: "delete", UntaggedAge: testGrace, KeepReferrers: tc.keepReferrers,
		Concurrency: 4, Retention: tc.retention, StorageRepositories: tc.limit,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(context.Background(), tc.dryRun)
	if err != nil {
		t.Fatal(err)
	}
	want := m.want(cmp.Or(tc.limit, 1000))
	if rep.Storage == nil {
		t.Fatal("the report has no storage section")
	}
	assertStorage(t, *rep.Storage, want)
	if tc.check != nil {
		tc.check(t, rep)
	}
	// The stored report (what `gc status` and the UI read) has it too.
	last, err := reg.LastGCReport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last.Storage == nil {
		t.Fatal("the stored report has no storage section")
	}
	assertStorage(t, *last.Storage, want)
}

func assertStorage(t *testing.T, got, want gc.Storage) {
	t.Helper()
	if got.UniqueBytes != want.UniqueBytes || got.OtherRepositories != want.OtherRepositories || got.OtherBytes != want.OtherBytes {
		t.Errorf("unique %d, other %d repositories of %d bytes; want unique %d, other %d of %d",
			got.UniqueBytes, got.OtherRepositories, got.OtherBytes, want.UniqueBytes, want.OtherRepositories, want.OtherBytes)
	}
	if !slices.Equal(got.Repositories, want.Repositories) {
		t.Errorf("repositories:\n got %+v\nwant %+v", got.Repositories, want.Repositories)
	}
}
