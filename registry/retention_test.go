package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/policy/immutable"
	"github.com/stratus-registry/stratus/policy/retention"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

// retentionTag is one generated tag: its name, its age and its own layer.
type retentionTag struct {
	name  string
	age   time.Duration
	layer []byte
}

// generateRetentionRepo pushes n tags to repo, each on a manifest of its
// own layer; every 7th is a release-* tag and every 9th an immutable v*
// tag. Tag i is i days and an hour old (its file's mtime).
func generateRetentionRepo(t *testing.T, tr *testRegistry, root, repo string, n int) []retentionTag {
	t.Helper()
	now := time.Now()
	var tags []retentionTag
	for i := range n {
		name := fmt.Sprintf("build-%d", i)
		switch {
		case i%9 == 0:
			name = fmt.Sprintf("v%d", i)
		case i%7 == 0:
			name = fmt.Sprintf("release-%d", i)
		}
		tg := retentionTag{name: name, age: time.Duration(i)*24*time.Hour + time.Hour, layer: []byte("retention layer " + repo + ":" + name)}
		_, m := tr.imageManifest(repo, tg.layer)
		tr.expect(tr.do("PUT", "/v2/"+repo+"/manifests/"+name, m, "Content-Type", mtOCIManifest), 201, "")
		mod := now.Add(-tg.age)
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(content.TagKey(repo, name))), mod, mod); err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tg)
	}
	return tags
}

func TestRetention(t *testing.T) {
	root := t.TempDir()
	store, err := filesystem.New(filesystem.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	imm, err := immutable.New([]immutable.Rule{{Repository: "ci/**", Tags: []string{"v*"}}})
	if err != nil {
		t.Fatal(err)
	}
	ret, err := retention.New([]retention.Rule{{
		Repository: "ci/**", KeepNewest: 10, KeepTags: []string{"release-*"},
		DeleteOlderThan: 30 * 24 * time.Hour, KeepUntaggedFor: time.Millisecond,
	}}, imm)
	if err != nil {
		t.Fatal(err)
	}
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	// registry.gc.untagged stays "keep": the rule makes ci/** "delete".
	reg, err := New(context.Background(), gcConfig("keep"), Deps{Storage: store, Locking: locks, TagPolicy: imm, Retention: ret.ForGC()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checkErrors(t, reg))
	t.Cleanup(srv.Close)
	tr := &testRegistry{t: t, srv: srv, store: store}

	const repo = "ci/app"
	tags := generateRetentionRepo(t, tr, root, repo, 50)
	// An untouched repository outside the rule, with an old tag.
	outside := generateRetentionRepo(t, tr, root, "dev/app", 40)
	ageOut()

	// The expectation, from the generation alone: tag i is beyond the
	// newest 10 and older than 30 days from i = 30 on; release-* and v*
	// tags are kept.
	var want, reasonsOK []string
	for i, tg := range tags {
		switch {
		case strings.HasPrefix(tg.name, "v"):
			reasonsOK = append(reasonsOK, "tag "+repo+":"+tg.name+" keep kept, immutable")
		case strings.HasPrefix(tg.name, "release-"):
			reasonsOK = append(reasonsOK, "tag "+repo+":"+tg.name+" keep kept, matches release-*")
		case i < 10:
			reasonsOK = append(reasonsOK, "tag "+repo+":"+tg.name+" keep kept, newest 10")
		case i < 30:
			reasonsOK = append(reasonsOK, "tag "+repo+":"+tg.name+" keep kept, younger than 30d")
		default:
			want = append(want, tg.name)
			reasonsOK = append(reasonsOK, "tag "+repo+":"+tg.name+" delete older than 30d")
		}
	}

	dry, err := reg.RunGC(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	var gotDelete, gotAll []string
	for _, d := range dry.Decisions {
		if !strings.HasPrefix(d.Object, "tag ") {
			continue
		}
		gotAll = append(gotAll, d.Object+" "+d.Action+" "+d.Reason)
		if d.Action == "delete" {
			gotDelete = append(gotDelete, strings.TrimPrefix(d.Object, "tag "+repo+":"))
		}
	}
	for _, w := range reasonsOK {
		if !slices.ContainsFunc(gotAll, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("dry run lacks %q", w)
		}
	}
	if len(gotAll) != len(tags) {
		t.Errorf("dry run has %d tag decisions, want %d (one per tag of %s, none for dev/app)", len(gotAll), len(tags), repo)
	}
	slices.Sort(gotDelete)
	slices.Sort(want)
	if !slices.Equal(gotDelete, want) {
		t.Fatalf("dry run deletes %v, want %v", gotDelete, want)
	}
	if dry.TagsDeleted != len(want) || dry.ManifestsDeleted != len(want) {
		t.Fatalf("dry run: %d tags, %d manifests, want %d each", dry.TagsDeleted, dry.ManifestsDeleted, len(want))
	}
	if n := len(tagsOf(t, tr, repo)); n != len(tags) {
		t.Fatalf("the dry run deleted tags: %d left of %d", n, len(tags))
	}

	rep := mustGC(t, reg)
	if rep.TagsDeleted != len(want) || rep.ManifestsDeleted != len(want) || rep.BlobsDeleted != len(want) {
		t.Fatalf("pass deleted %d tags, %d manifests, %d blobs; want %d each", rep.TagsDeleted, rep.ManifestsDeleted, rep.BlobsDeleted, len(want))
	}
	left := tagsOf(t, tr, repo)
	for _, tg := range tags {
		doomed := slices.Contains(want, tg.name)
		if slices.Contains(left, tg.name) == doomed {
			t.Errorf("tag %s: present %v, doomed %v", tg.name, !doomed, doomed)
		}
		_, err := store.Stat(context.Background(), content.BlobRecordKey(mustDigest(t, sha(tg.layer))))
		if gone := err != nil; gone != doomed {
			t.Errorf("layer of %s: gone %v (%v), doomed %v", tg.name, gone, err, doomed)
		}
	}
	if n := len(tagsOf(t, tr, "dev/app")); n != len(outside) {
		t.Errorf("dev/app has %d tags, want all %d", n, len(outside))
	}
	// A second pass finds nothing more to do.
	if rep := mustGC(t, reg); rep.TagsDeleted != 0 || rep.BlobsDeleted != 0 {
		t.Errorf("second pass deleted %d tags, %d blobs", rep.TagsDeleted, rep.BlobsDeleted)
	}
}

func tagsOf(t *testing.T, tr *testRegistry, repo string) []string {
	t.Helper()
	r := tr.do("GET", "/v2/"+repo+"/tags/list?n=1000", nil)
	tr.expect(r, 200, "")
	var body struct{ Tags []string }
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Tags
}
