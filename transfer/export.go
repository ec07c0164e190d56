package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stratus-registry/stratus/registry/content"
)

// Filter selects what an export carries: repositories whose name matches
// one of Repos and tags matching one of Tags (doublestar globs, so
// "prod/**" selects every repository under prod/). Empty means all.
type Filter struct {
	Repos []string
	Tags  []string
}

// Validate reports the first malformed pattern.
func (f Filter) Validate() error {
	for _, set := range [][]string{f.Repos, f.Tags} {
		for _, p := range set {
			if !doublestar.ValidatePattern(p) {
				return fmt.Errorf("invalid pattern %q", p)
			}
		}
	}
	return nil
}

func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := doublestar.Match(p, s); ok {
			return true
		}
	}
	return false
}

// ExportStats counts what an export wrote.
type ExportStats struct {
	Repositories int
	Tags         int
	Manifests    int // manifests written, each once
	Blobs        int // configs and layers written, each once
	Bytes        int64
}

// Export writes the repositories and tags f selects from store to the
// layout out: a tar file when out ends in ".tar", a directory otherwise.
// Every blob is streamed from the store, checked against its digest on
// the way, and written once however many manifests share it.
func Export(ctx context.Context, store *content.Store, out string, f Filter, now time.Time) (ExportStats, error) {
	if err := f.Validate(); err != nil {
		return ExportStats{}, err
	}
	var snk sink
	var err error
	if isTar(out) {
		snk, err = newTarSink(out, now)
	} else {
		snk, err = newDirSink(out)
	}
	if err != nil {
		return ExportStats{}, err
	}
	ex := &exporter{store: store, sink: snk, written: make(map[digest.Digest]bool)}
	if err := ex.run(ctx, f); err != nil {
		snk.abort()
		return ex.stats, err
	}
	return ex.stats, snk.commit()
}

type exporter struct {
	store   *content.Store
	sink    sink
	written map[digest.Digest]bool // layout files written, by digest
	entries []Entry
	stats   ExportStats
}

func (ex *exporter) run(ctx context.Context, f Filter) error {
	err := ex.store.EachRepository(ctx, func(r *content.Repository) error {
		if !matchAny(f.Repos, r.Name()) {
			return nil
		}
		return ex.exportRepository(ctx, r, f.Tags)
	})
	if err != nil {
		return err
	}
	idx, err := json.Marshal(newIndex(ex.entries))
	if err != nil {
		return fmt.Errorf("encode %s: %w", indexFile, err)
	}
	if err := ex.sink.write(indexFile, int64(len(idx)), bytes.NewReader(idx)); err != nil {
		return err
	}
	marker, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	return ex.sink.write(layoutFile, int64(len(marker)), bytes.NewReader(marker))
}

// exportRepository writes the selected tags of r, everything they reach,
// and their referrers (transitively).
func (ex *exporter) exportRepository(ctx context.Context, r *content.Repository, tags []string) error {
	var tagged []Entry
	err := r.EachTagPage(ctx, func(page []content.TagEntry) error {
		for _, t := range page {
			if !matchAny(tags, t.Tag) {
				continue
			}
			d, err := r.ResolveEntry(ctx, t)
			if err != nil {
				return fmt.Errorf("tag %s: %w", t.Tag, err)
			}
			tagged = append(tagged, Entry{Repository: r.Name(), Tag: t.Tag, Descriptor: v1.Descriptor{Digest: d}})
		}
		return nil
	})
	if err != nil || len(tagged) == 0 {
		return err
	}
	ex.stats.Repositories++
	seen := make(map[digest.Digest]bool) // manifests of this repository already walked
	var queue []digest.Digest
	for _, e := range tagged {
		desc, err := ex.exportManifest(ctx, r, e.Descriptor.Digest, seen, &queue)
		if err != nil {
			return fmt.Errorf("tag %s: %w", e.Tag, err)
		}
		e.Descriptor = desc
		ex.entries = append(ex.entries, e)
		ex.stats.Tags++
	}
	return ex.exportReferrers(ctx, r, seen, queue)
}

// exportReferrers walks the referrers of every manifest in queue, adding
// each as an untagged entry; their own referrers join the queue.
func (ex *exporter) exportReferrers(ctx context.Context, r *content.Repository, seen map[digest.Digest]bool, queue []digest.Digest) error {
	listed := make(map[digest.Digest]bool)
	for len(queue) > 0 {
		subject := queue[0]
		queue = queue[1:]
		q := content.ReferrersQuery{MaxEntries: 1000, MaxBytes: 4 << 20}
		for {
			page, err := r.Referrers(ctx, subject, q)
			if err != nil {
				return fmt.Errorf("referrers of %s: %w", subject, err)
			}
			for _, rec := range page.Records {
				var desc v1.Descriptor
				if err := json.Unmarshal(rec, &desc); err != nil {
					return fmt.Errorf("referrer record of %s: %w", subject, err)
				}
				if listed[desc.Digest] || seen[desc.Digest] {
					continue
				}
				full, err := ex.exportManifest(ctx, r, desc.Digest, seen, &queue)
				if err != nil {
					return fmt.Errorf("referrer %s of %s: %w", desc.Digest, subject, err)
				}
				listed[desc.Digest] = true
				full.ArtifactType = desc.ArtifactType
				ex.entries = append(ex.entries, Entry{Repository: r.Name(), Descriptor: full})
			}
			if !page.More {
				break
			}
			q.Last = page.Next
		}
	}
	return nil
}

// exportManifest writes manifest d of r after everything it references,
// and returns its descriptor. Each manifest walked is queued for the
// referrers pass.
func (ex *exporter) exportManifest(ctx context.Context, r *content.Repository, d digest.Digest, seen map[digest.Digest]bool, queue *[]digest.Digest) (v1.Descriptor, error) {
	m, err := r.GetManifest(ctx, d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc := v1.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(m.Body))}
	if seen[d] {
		return desc, nil
	}
	seen[d] = true
	*queue = append(*queue, d)
	if got := d.Algorithm().FromBytes(m.Body); got != d {
		return v1.Descriptor{}, fmt.Errorf("%w: manifest %s in %s hashes to %s", content.ErrCorrupt, d, r.Name(), got)
	}
	pm, err := m.Parse()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	for _, ref := range pm.Refs {
		if ref.Manifest {
			if _, err := ex.exportManifest(ctx, r, ref.Digest, seen, queue); err != nil {
				return v1.Descriptor{}, fmt.Errorf("%s: %w", ref.Where, err)
			}
			continue
		}
		if err := ex.exportBlob(ctx, r, ref.Digest); err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: %w", ref.Where, err)
		}
	}
	if ex.written[d] {
		return desc, nil
	}
	if err := ex.sink.write(blobPath(d), desc.Size, bytes.NewReader(m.Body)); err != nil {
		return v1.Descriptor{}, err
	}
	ex.written[d] = true
	ex.stats.Manifests++
	ex.stats.Bytes += desc.Size
	return desc, nil
}

// exportBlob streams blob d from the store into the layout, once.
func (ex *exporter) exportBlob(ctx context.Context, r *content.Repository, d digest.Digest) error {
	if ex.written[d] {
		return nil
	}
	b, err := r.StatBlob(ctx, d, false)
	if err != nil {
		return err
	}
	rc, err := ex.store.Open(ctx, b, 0, -1)
	if err != nil {
		return fmt.Errorf("open blob %s: %w", d, err)
	}
	defer rc.Close()
	if err := ex.sink.write(blobPath(d), b.Size, newVerifyingReader(rc, d, "blob "+d.String()+" in the store")); err != nil {
		return err
	}
	ex.written[d] = true
	ex.stats.Blobs++
	ex.stats.Bytes += b.Size
	return nil
}

// verifyingReader hashes what it reads and, at the end, fails with a
// *DigestMismatchError unless the bytes hash to want: a copy through it
// never completes with the wrong content.
type verifyingReader struct {
	r        io.Reader
	want     digest.Digest
	digester digest.Digester
	file     string
}

func newVerifyingReader(r io.Reader, want digest.Digest, file string) *verifyingReader {
	return &verifyingReader{r: r, want: want, digester: want.Algorithm().Digester(), file: file}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.digester.Hash().Write(p[:n])
	if err == io.EOF {
		if got := v.digester.Digest(); got != v.want {
			return n, &DigestMismatchError{Want: v.want, Got: got, File: v.file}
		}
	}
	return n, err
}
