package content

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// referrerRecordOverhead is what a referrer record holds besides the
// manifest's annotations (copied verbatim) and its artifactType (at most
// maxArtifactTypeLen bytes, six bytes per byte if every one is escaped):
// media type, digest, size and the JSON around them.
const referrerRecordOverhead = 6*maxArtifactTypeLen + 1024

// referrerRecord is the object at ReferrerKey: the descriptor the referrers
// API lists, annotations as the manifest had them.
type referrerRecord struct {
	MediaType    string          `json:"mediaType"`
	Digest       string          `json:"digest"`
	Size         int64           `json:"size"`
	ArtifactType string          `json:"artifactType,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
}

// maxReferrerRecord is the largest referrer record AddReferrer writes, and
// so the cap Referrers reads records with.
func (s *Store) maxReferrerRecord() int64 {
	return s.opts.MaxManifestSize + referrerRecordOverhead
}

// AddReferrer records manifest d (size bytes, validated as pm) as a
// referrer of subject: one small object holding the descriptor the
// referrers API returns. The annotations are copied as pushed and nothing
// is HTML-escaped, so the record stays within maxReferrerRecord.
func (r *Repository) AddReferrer(ctx context.Context, subject, d digest.Digest, pm *Parsed, size int64) error {
	rec := referrerRecord{MediaType: pm.MediaType, Digest: d.String(), Size: size, ArtifactType: pm.ArtifactType, Annotations: pm.RawAnnotations}
	if rec.Annotations == nil && len(pm.Annotations) > 0 {
		b, err := json.Marshal(pm.Annotations)
		if err != nil {
			return fmt.Errorf("encode the annotations of %s: %w", d, err)
		}
		rec.Annotations = b
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return fmt.Errorf("encode the referrer record of %s: %w", d, err)
	}
	b := bytes.TrimSpace(buf.Bytes())
	if limit := r.s.maxReferrerRecord(); int64(len(b)) > limit {
		return fmt.Errorf("referrer record of %s is %d bytes, over the %d the referrers API reads", d, len(b), limit)
	}
	_, err := r.s.driver.Put(ctx, ReferrerKey(r.name, subject, d), bytes.NewReader(b), storage.PutOptions{Size: int64(len(b)), ContentType: "application/json"})
	return err
}

// RemoveReferrer removes d from the referrers of subject.
func (r *Repository) RemoveReferrer(ctx context.Context, subject, d digest.Digest) error {
	return r.s.driver.Delete(ctx, ReferrerKey(r.name, subject, d))
}

// ReferrersQuery selects one page of referrers.
type ReferrersQuery struct {
	// Last is the cursor of the previous page ("" for the first).
	Last string
	// ArtifactType filters by artifact type when set.
	ArtifactType string
	// MaxEntries and MaxBytes bound the page; a single record larger than
	// MaxBytes is still returned, alone on its page.
	MaxEntries int
	MaxBytes   int
}

// ReferrersPage is one response's worth of referrer records.
type ReferrersPage struct {
	Records [][]byte // compact JSON descriptors
	Bytes   int
	// Next is the cursor of the next page; More reports a record that did
	// not fit follows it, so the last page never links to an empty one.
	Next string
	More bool
}

// ValidReferrersCursor reports whether last can be a cursor Referrers
// returned.
func ValidReferrersCursor(last string) bool {
	return len(last) <= MaxNameLength && !strings.Contains(last, "/")
}

// Referrers reads the records of subject after q.Last until the page is
// full. A record that does not fit is read once more by the next page.
func (r *Repository) Referrers(ctx context.Context, subject digest.Digest, q ReferrersQuery) (*ReferrersPage, error) {
	prefix := referrersPrefix(r.name, subject)
	after := ""
	if q.Last != "" {
		after = prefix + q.Last
	}
	p := &ReferrersPage{}
	last := ""
	for {
		listing, err := r.s.driver.List(ctx, prefix, after, 0)
		if err != nil {
			return nil, err
		}
		for _, o := range listing.Objects {
			rec, err := r.s.readReferrer(ctx, o, q.ArtifactType)
			if err != nil {
				return nil, err
			}
			if rec != nil {
				if len(p.Records) >= q.MaxEntries || len(p.Records) > 0 && p.Bytes+len(rec) > q.MaxBytes {
					p.More, p.Next = true, strings.TrimPrefix(last, prefix)
					return p, nil
				}
				p.Records = append(p.Records, rec)
				p.Bytes += len(rec)
			}
			last = o.Key
		}
		if !listing.More || len(listing.Objects) == 0 {
			return p, nil
		}
		after = listing.Objects[len(listing.Objects)-1].Key
	}
}

// errRecordTooLarge: a record is over maxReferrerRecord, so not one that
// AddReferrer wrote.
var errRecordTooLarge = errors.New("referrer record too large")

// readReferrer returns the record at o as compact JSON, or nil when it
// does not match filter, was deleted meanwhile, or is unusable (corrupt,
// oversized: skipped with a warning, so one bad object cannot break the
// listing). Errors are the store's, for the client to retry.
func (s *Store) readReferrer(ctx context.Context, o storage.Info, filter string) ([]byte, error) {
	limit := s.maxReferrerRecord()
	b, err := readListed(ctx, s.driver, o, limit)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case errors.Is(err, errRecordTooLarge):
		s.logger.Warn("skipping oversized referrer record", "key", o.Key, "max", limit)
		return nil, nil
	case err != nil:
		return nil, err
	}
	var desc descriptor
	if err := json.Unmarshal(b, &desc); err != nil {
		s.logger.Warn("skipping corrupt referrer record", "key", o.Key, "err", err)
		return nil, nil
	}
	if _, err := ParseDigest(desc.Digest.String()); err != nil || desc.MediaType == "" {
		s.logger.Warn("skipping corrupt referrer record", "key", o.Key, "err", "not a descriptor")
		return nil, nil
	}
	if filter != "" && desc.ArtifactType != filter {
		return nil, nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("compact referrer record %s: %w", o.Key, err)
	}
	return out.Bytes(), nil
}

// readListed reads the listed object o, refusing (errRecordTooLarge) one
// over limit bytes by its listed size, or without reading more than
// limit+1 bytes if it grew since it was listed.
func readListed(ctx context.Context, d storage.Driver, o storage.Info, limit int64) ([]byte, error) {
	key := o.Key
	if o.Size > limit {
		return nil, fmt.Errorf("%w: %s has %d bytes, over %d", errRecordTooLarge, key, o.Size, limit)
	}
	rc, err := d.Reader(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is over %d bytes", errRecordTooLarge, key, limit)
	}
	return b, nil
}
