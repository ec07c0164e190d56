package gc

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking/memory"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/inmemory"
)

// s3Like makes an in-memory store answer as S3 does where the mark cache
// cares: the ETag is the MD5 of the content (so writing content back
// brings its ETag back) and modification times have whole seconds. While
// aging is on, writes are dated an hour back, as content pushed long
// before the test. It counts reads of tag and manifest objects, and runs
// onRead (once) before the read of a key it names.
type s3Like struct {
	storage.Driver
	mu     sync.Mutex
	aging  bool
	md5    map[string]string
	mod    map[string]time.Time
	reads  int
	onRead map[string]func()
	// slowTagReads delays each tag read by 1-4 ms.
	slowTagReads bool
}

func newS3Like() *s3Like {
	return &s3Like{Driver: inmemory.New(), aging: true, md5: map[string]string{}, mod: map[string]time.Time{}, onRead: map[string]func(){}}
}

func (d *s3Like) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return storage.Info{}, err
	}
	info, err := d.Driver.Put(ctx, key, bytes.NewReader(b), storage.PutOptions{CreateOnly: opts.CreateOnly, Size: int64(len(b))})
	if err != nil {
		return info, err
	}
	sum := md5.Sum(b)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.md5[key] = hex.EncodeToString(sum[:])
	mod := time.Now().Truncate(time.Second)
	if d.aging {
		mod = mod.Add(-time.Hour)
	}
	d.mod[key] = mod
	return d.s3Info(info), nil
}

func (d *s3Like) s3Info(info storage.Info) storage.Info {
	if etag, ok := d.md5[info.Key]; ok {
		info.ETag, info.ModTime = etag, d.mod[info.Key]
	}
	return info
}

func (d *s3Like) Stat(ctx context.Context, key string) (storage.Info, error) {
	info, err := d.Driver.Stat(ctx, key)
	d.mu.Lock()
	defer d.mu.Unlock()
	info.Key = key
	return d.s3Info(info), err
}

func (d *s3Like) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	page, err := d.Driver.List(ctx, prefix, startAfter, limit)
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, o := range page.Objects {
		page.Objects[i] = d.s3Info(o)
	}
	return page, err
}

func (d *s3Like) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	d.mu.Lock()
	hook := d.onRead[key]
	delete(d.onRead, key)
	if strings.Contains(key, "/_tags/") || strings.Contains(key, "/_manifests/") {
		d.reads++
	}
	slow := d.slowTagReads && strings.Contains(key, "/_tags/")
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
	if slow {
		time.Sleep(time.Duration(1000+rand.IntN(3000)) * time.Microsecond)
	}
	return d.Driver.Reader(ctx, key, offset, length)
}

func (d *s3Like) set(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f()
}

func (d *s3Like) readCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

// cacheFixture is repository "a" on an S3-like store with two images, old
// (written an hour ago): "kept" tagged v1 and "other" untagged.
type cacheFixture struct {
	driver      *s3Like
	locks       *memory.Store
	store       *content.Store
	repo        *content.Repository
	kept, other image
}

func newCacheFixture(t *testing.T, aged bool) *cacheFixture {
	t.Helper()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	d := newS3Like()
	d.aging = aged
	store, err := content.New(d, locks, content.Options{MaxManifestSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := store.Repository("a")
	f := &cacheFixture{driver: d, locks: locks, store: store, repo: repo}
	f.kept = putImage(t, store, repo, "kept", []string{"v1"})
	f.other = putImage(t, store, repo, "other", nil)
	d.set(func() { d.aging = false })
	time.Sleep(testGrace + 50*time.Millisecond) // pins of the pushes are older than grace
	return f
}

// tagKey is where the store keeps tag v1 of repository "a".
func (f *cacheFixture) tagKey(t *testing.T) string {
	t.Helper()
	var key string
	f.driver.set(func() {
		for k := range f.driver.md5 {
			if strings.HasSuffix(k, "/_tags/v1") {
				key = k
			}
		}
	})
	if key == "" {
		t.Fatal("no tag object for v1")
	}
	return key
}

// retag points v1 at img as a manifest PUT by tag does (which pins img).
func (f *cacheFixture) retag(t *testing.T, img image) {
	t.Helper()
	if err := f.repo.PutManifest(context.Background(), img.manifest, img.parsed, img.body, []string{"v1"}, time.Second); err != nil {
		t.Fatal(err)
	}
}

// wouldDelete reports whether a dry-run report decided to delete manifest d.
func wouldDelete(r *Report, d digest.Digest) bool {
	for _, dec := range r.Decisions {
		if strings.HasPrefix(dec.Object, "manifest ") && strings.HasSuffix(dec.Object, d.String()) && dec.Action == "delete" {
			return true
		}
	}
	return false
}

func TestMarkCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		aged  bool
		limit int
		// between runs between the two passes; during runs while the
		// first pass reads the tag, after its listing.
		between, during func(t *testing.T, f *cacheFixture)
		wantHits        int
		wantReads       int // tag and manifest reads of the second pass
		// keptGone, otherGone: the second pass (a dry run) would delete
		// the image's manifest.
		keptGone, otherGone bool
	}{
		{name: "unchanged: the second pass reads nothing", aged: true, limit: 100, wantHits: 2, wantReads: 0, otherGone: true},
		{name: "young objects are not cached", aged: false, limit: 100, wantHits: 0, wantReads: 2, otherGone: true},
		{name: "bounded", aged: true, limit: 1, wantHits: 1, wantReads: 1, otherGone: true},
		{
			name: "retagged between passes", aged: true, limit: 100,
			between: func(t *testing.T, f *cacheFixture) { f.retag(t, f.other) },
			// The tag is read again; other's manifest is (it was not
			// live, so never cached), kept's is not read at all now.
			wantHits: 0, wantReads: 2, keptGone: true,
		},
		{
			// The tag is rewritten after the first pass listed it and
			// before it read it, then rewritten back: on S3 its ETag is
			// the listed one again, only the modification time tells.
			name: "rewritten between listing and read, then back", aged: true, limit: 100,
			during:  func(t *testing.T, f *cacheFixture) { f.retag(t, f.other) },
			between: func(t *testing.T, f *cacheFixture) { f.retag(t, f.kept) },
			// v1 is read again and leads to kept, whose manifest the
			// first pass never read (other was live then).
			wantHits: 0, wantReads: 2, otherGone: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newCacheFixture(t, tc.aged)
			cache := NewMarkCache(tc.limit)
			c, err := New(f.store, f.locks, Config{Grace: testGrace, Untagged: "delete", UntaggedAge: testGrace, KeepReferrers: true,
				Concurrency: 4, UploadTTL: time.Hour, MarkCache: cache}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.during != nil {
				key := f.tagKey(t)
				f.driver.set(func() { f.driver.onRead[key] = func() { tc.during(t, f) } })
			}
			if _, err := c.Run(ctx, true); err != nil {
				t.Fatal(err)
			}
			if tc.between != nil {
				tc.between(t, f)
			}
			// What the retags wrote and pinned is older than grace, so
			// only the marks decide what the second pass would delete.
			time.Sleep(testGrace + 50*time.Millisecond)
			before := f.driver.readCount()
			r, err := c.Run(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			if reads := f.driver.readCount() - before; r.MarkCacheHits != tc.wantHits || reads != tc.wantReads {
				t.Errorf("second pass: %d cache hits, %d tag and manifest reads; want %d, %d", r.MarkCacheHits, reads, tc.wantHits, tc.wantReads)
			}
			if got := wouldDelete(r, f.kept.manifest); got != tc.keptGone {
				t.Errorf("second pass would delete kept's manifest: %v, want %v", got, tc.keptGone)
			}
			if got := wouldDelete(r, f.other.manifest); got != tc.otherGone {
				t.Errorf("second pass would delete other's manifest: %v, want %v", got, tc.otherGone)
			}
		})
	}
}

// TestMarkCacheUnderRetags moves each tag away and straight back once
// (on S3 the second write brings the listed ETag back), at random moments
// while passes loop, with tag reads slowed so that writes land between a
// pass's listing and its read. Once the moves stop, a pass must decide
// exactly from where the tags point: every manifest no tag reaches would
// be deleted, and no other. Each tagged image has exactly one tag, so a
// wrong mark shows. Passes are dry runs, which decide without pins, so no
// pin covers a wrong mark (and every image stays available to tag again).
// Three rounds, each on a fresh store: the moves must be a tag's first
// since the store was written for a read of them to be cached.
func TestMarkCacheUnderRetags(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), retagRound)
	}
}

func retagRound(t *testing.T) {
	const tagged, spare = 24, 8
	ctx := context.Background()
	locks := memory.New()
	t.Cleanup(func() { locks.Close() })
	d := newS3Like()
	d.slowTagReads = true
	store, err := content.New(d, locks, content.Options{MaxManifestSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := store.Repository("a")
	imgs := make([]image, tagged+spare)
	for i := range imgs {
		var tags []string
		if i < tagged {
			tags = []string{fmt.Sprintf("t%d", i)}
		}
		imgs[i] = putImage(t, store, repo, fmt.Sprintf("img%d", i), tags)
	}
	d.set(func() { d.aging = false })
	c, err := New(store, locks, Config{Grace: testGrace, Untagged: "delete", UntaggedAge: testGrace, KeepReferrers: true,
		Concurrency: 4, UploadTTL: time.Hour, MarkCache: NewMarkCache(1000)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	passes := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				passes <- nil
				return
			default:
			}
			if _, err := c.Run(ctx, true); err != nil {
				passes <- err
				return
			}
		}
	}()
	retag := func(tag string, i int) {
		if err := repo.PutManifest(ctx, imgs[i].manifest, imgs[i].parsed, imgs[i].body, []string{tag}, time.Second); err != nil {
			t.Error(err)
		}
	}
	for _, k := range rand.Perm(tagged) {
		tag := fmt.Sprintf("t%d", k)
		time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
		retag(tag, tagged+rand.IntN(spare))
		// Longer than a slowed read: a read that saw the first write
		// is over before the second.
		time.Sleep(time.Duration(4000+rand.IntN(2000)) * time.Microsecond)
		retag(tag, k)
	}
	// Passes go on after the last move, so entries made while the tags
	// moved are used.
	time.Sleep(100 * time.Millisecond)
	close(stop)
	if err := <-passes; err != nil {
		t.Fatal(err)
	}
	// Every write is older than grace, even at whole seconds.
	time.Sleep(time.Second + testGrace + 100*time.Millisecond)
	for range 2 {
		r, err := c.Run(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, img := range imgs {
			if got, want := wouldDelete(r, img.manifest), i >= tagged; got != want {
				t.Errorf("image %d (tagged: %v): would delete %v (%d cache hits)", i, i < tagged, got, r.MarkCacheHits)
			}
		}
	}
}
