package transfer

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestImportHonoursImmutableTags: under an immutable-tags rule an import
// creates missing tags, leaves tags that already point at the archive's
// digest alone, and fails rather than move a tag that points elsewhere;
// without the rule the same import moves it back.
func TestImportHonoursImmutableTags(t *testing.T) {
	ctx := context.Background()
	src := newTestStore(t)
	f := buildFixture(t, src)
	out := filepath.Join(t.TempDir(), "layout")
	if _, err := Export(ctx, src.store, out, Filter{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	protected := testOpts
	protected.Immutable = func(repo, tag string) (string, bool) { return "app/** v*", tag != "latest" && tag != "multi" }

	dst := newTestStore(t)
	st, err := Import(ctx, dst.store, out, protected)
	if err != nil || st.TagsSet != 5 {
		t.Fatalf("first import under the rule: %+v, %v; want 5 tags created", st, err)
	}
	if st, err := Import(ctx, dst.store, out, protected); err != nil || st.Imported() != 0 {
		t.Fatalf("second import under the rule: %+v, %v; want nothing new", st, err)
	}

	web := dst.repo(t, "app/web")
	if err := web.SetTag(ctx, "v1", f.referrer.Digest); err != nil { // moved by hand, behind the rule's back
		t.Fatal(err)
	}
	_, err = Import(ctx, dst.store, out, protected)
	if !errors.Is(err, ErrImmutableTag) {
		t.Fatalf("import over a moved immutable tag: %v; want ErrImmutableTag", err)
	}
	if d, _ := web.ResolveTag(ctx, "v1"); d != f.referrer.Digest {
		t.Fatalf("the refused import moved v1 to %s", d)
	}
	if _, err := Import(ctx, dst.store, out, testOpts); err != nil {
		t.Fatalf("import without the rule: %v", err)
	}
	if d, _ := web.ResolveTag(ctx, "v1"); d != f.web1.Digest {
		t.Fatalf("without the rule v1 is %s; want the archive's %s", d, f.web1.Digest)
	}
}
