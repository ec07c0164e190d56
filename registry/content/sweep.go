package content

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// What GC reads and deletes. GC decides what is live; the content store
// knows where things are and which claim each deletion needs, so that the
// claim scoping of docs/architecture.md ("Claims are scoped to what is
// deleted") lives in one place:
//   - LinkTarget claims the one link it removes;
//   - ManifestTarget claims the repository's manifest key;
//   - BlobTarget, which deletes the global record, claims the digest;
//   - DataTarget claims the data key.

// Entry is a listed object of the layout that names a digest.
type Entry struct {
	Digest digest.Digest
	// Version is the object's version as the listing showed it; its
	// ModTime is the object's age.
	Version
}

// Version identifies one written version of an object as a listing shows
// it: ETag, size and modification time. Every write of different content
// changes the ETag (storage.Info) or, where ETags repeat for identical
// content (S3's MD5), at least the modification time; gc's mark cache
// relies on that (docs/architecture.md, "The mark remembers what it read").
type Version struct {
	ETag    string
	Size    int64
	ModTime time.Time
}

func versionOf(o storage.Info) Version {
	return Version{ETag: o.ETag, Size: o.Size, ModTime: o.ModTime}
}

// EachManifest calls fn with the repository's manifests, a page at a time.
func (r *Repository) EachManifest(ctx context.Context, fn func([]Entry) error) error {
	return r.s.eachDigestPage(ctx, manifestsPrefix(r.name), fn)
}

// EachLink calls fn with the blobs the repository links, a page at a time.
func (r *Repository) EachLink(ctx context.Context, fn func([]Entry) error) error {
	return r.s.eachDigestPage(ctx, linksPrefix(r.name), fn)
}

func (s *Store) eachDigestPage(ctx context.Context, prefix string, fn func([]Entry) error) error {
	return s.eachPage(ctx, prefix, func(objs []storage.Info) error {
		page := make([]Entry, 0, len(objs))
		for _, o := range objs {
			if d, ok := digestFromKey(o.Key, prefix); ok {
				page = append(page, Entry{Digest: d, Version: versionOf(o)})
			}
		}
		return fn(page)
	})
}

// EachReferrer calls fn with every (subject, referrer) pair recorded in the
// repository, from one listing of its referrers index.
func (r *Repository) EachReferrer(ctx context.Context, fn func(subject, referrer digest.Digest)) error {
	prefix := allReferrersPrefix(r.name)
	return r.s.eachPage(ctx, prefix, func(objs []storage.Info) error {
		for _, o := range objs {
			if subj, ref, ok := referrerFromKey(strings.TrimPrefix(o.Key, prefix)); ok {
				fn(subj, ref)
			}
		}
		return nil
	})
}

// EachBlob calls fn with the digests of all blob records, a page at a
// time, listing up to conc shards of the records concurrently: fn is
// called concurrently (Stat reads each record).
func (s *Store) EachBlob(ctx context.Context, conc int, fn func([]Entry) error) error {
	return s.eachPageSharded(ctx, recordShards(), conc, func(objs []storage.Info) error {
		page := make([]Entry, 0, len(objs))
		for _, o := range objs {
			if d, ok := digestFromRecordKey(o.Key); ok {
				page = append(page, Entry{Digest: d, Version: versionOf(o)})
			}
		}
		return fn(page)
	})
}

// DataEntry is a listed upload data object.
type DataEntry struct {
	Ref     DataRef
	Size    int64
	ModTime time.Time
}

// EachData calls fn with every upload data object, a page at a time,
// listing up to conc shards concurrently: fn is called concurrently.
func (s *Store) EachData(ctx context.Context, conc int, fn func([]DataEntry) error) error {
	return s.eachPageSharded(ctx, hexShards(dataPrefix), conc, func(objs []storage.Info) error {
		page := make([]DataEntry, len(objs))
		for i, o := range objs {
			page[i] = DataEntry{Ref: DataRef(o.Key), Size: o.Size, ModTime: o.ModTime}
		}
		return fn(page)
	})
}

// Target is one deletion and the claim it must hold.
type Target struct {
	Digest digest.Digest
	claim  string
	keys   []string
	// linkRepo is the repository of a link deletion, whose link stamp
	// the deletion replaces first.
	linkRepo string
}

// ClaimKey is what the deletion claims (for logs and test hooks).
func (t Target) ClaimKey() string { return t.claim }

// LinkTarget unlinks d from this repository only.
func (r *Repository) LinkTarget(d digest.Digest) Target {
	k := LinkKey(r.name, d)
	return Target{Digest: d, claim: k, keys: []string{k}, linkRepo: r.name}
}

// ManifestTarget deletes manifest d of this repository and its referrer
// records: subjects are those the repository's referrers index lists d
// under (EachReferrer), so no manifest is read to learn its subject. A
// manifest PUT writes the manifest before its referrer record, so a
// record the listing missed belongs to a PUT in flight, which pinned the
// manifest key and so makes the claim fail; a PUT that crashed in between
// left no record to delete.
func (r *Repository) ManifestTarget(d digest.Digest, subjects ...digest.Digest) Target {
	k := ManifestKey(r.name, d)
	keys := make([]string, 0, len(subjects)+1)
	for _, subj := range subjects {
		keys = append(keys, ReferrerKey(r.name, subj, d))
	}
	return Target{Digest: d, claim: k, keys: append(keys, k)}
}

// BlobTarget deletes the global record of d (its data goes separately, by
// DeleteData, after the record: a crash in between leaves an orphan, never
// a record without bytes). Only this deletion claims the digest itself.
func (s *Store) BlobTarget(d digest.Digest) Target {
	return Target{Digest: d, claim: d.String(), keys: []string{BlobRecordKey(d)}}
}

// DataTarget deletes an orphaned upload data object and the index
// entries (digests) that name it; index entries go last, so a crash in
// between leaves data GC verifies again, never data without its entry.
func (s *Store) DataTarget(ref DataRef, indexed ...digest.Digest) Target {
	keys := []string{string(ref)}
	for _, d := range indexed {
		keys = append(keys, DataIndexKey(ref.UploadID(), d))
	}
	return Target{claim: string(ref), keys: keys}
}

// Claim marks t's scope as being deleted unless it was pinned at or after
// cutoff; it reports whether the claim was taken.
func (s *Store) Claim(ctx context.Context, t Target, cutoff time.Time, ttl time.Duration) (bool, error) {
	ok, err := s.pins.Claim(ctx, t.claim, cutoff, ttl)
	if s.opts.Hooks != nil {
		s.opts.Hooks.AfterClaim(t.claim, ok)
	}
	return ok, err
}

// Unclaim releases a claim (after deleting, or giving up).
func (s *Store) Unclaim(ctx context.Context, t Target) error { return s.pins.Unclaim(ctx, t.claim) }

// ClaimAll is Claim of each target in one round trip to the lock store;
// claimed[i] reports ts[i]. On error any of them may be claimed: the
// caller releases them all with UnclaimAll.
func (s *Store) ClaimAll(ctx context.Context, ts []Target, cutoff time.Time, ttl time.Duration) ([]bool, error) {
	keys := claimKeys(ts)
	claimed, err := s.pins.ClaimMany(ctx, keys, cutoff, ttl)
	if err != nil {
		return nil, err
	}
	if s.opts.Hooks != nil {
		for i, k := range keys {
			s.opts.Hooks.AfterClaim(k, claimed[i])
		}
	}
	return claimed, nil
}

// UnclaimAll releases the claims of ts in one round trip.
func (s *Store) UnclaimAll(ctx context.Context, ts []Target) error {
	if len(ts) == 0 {
		return nil
	}
	return s.pins.UnclaimMany(ctx, claimKeys(ts))
}

func claimKeys(ts []Target) []string {
	keys := make([]string, len(ts))
	for i, t := range ts {
		keys[i] = t.claim
	}
	return keys
}

// deleteBatch is how many objects one DeleteBatch removes.
const deleteBatch = 500

// Delete removes the objects of claimed targets, in batches.
func (s *Store) Delete(ctx context.Context, ts []Target) error {
	for len(ts) > 0 {
		n := min(len(ts), deleteBatch)
		if err := s.deleteTargets(ctx, ts[:n]); err != nil {
			return err
		}
		ts = ts[n:]
	}
	return nil
}

// deleteTargets deletes one batch of targets. Link deletions replace
// their repositories' link stamps first and must land within
// stampChangeDeadline (linkstamps.go).
func (s *Store) deleteTargets(ctx context.Context, ts []Target) error {
	var keys []string
	var repos []string
	for _, t := range ts {
		keys = append(keys, t.keys...)
		if t.linkRepo != "" && !slices.Contains(repos, t.linkRepo) {
			repos = append(repos, t.linkRepo)
		}
	}
	return s.links.deleteLinks(ctx, repos, s.logger, func(ctx context.Context) error {
		return s.deleteKeys(ctx, keys)
	})
}

// DeleteDataTargets removes the objects of claimed DataTargets in
// batches: every data object first, then their index entries, so that a
// crash in between leaves entries without data (deleted as stale by a
// later pass), never data without its entry.
func (s *Store) DeleteDataTargets(ctx context.Context, ts []Target) error {
	var data, entries []string
	for _, t := range ts {
		data = append(data, t.keys[0])
		entries = append(entries, t.keys[1:]...)
	}
	if err := s.deleteKeys(ctx, data); err != nil {
		return err
	}
	return s.deleteKeys(ctx, entries)
}

func (s *Store) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), deleteBatch)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.driver.DeleteBatch(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// SaveGCReport stores the report of the last GC pass.
func (s *Store) SaveGCReport(ctx context.Context, report []byte) error {
	_, err := s.driver.Put(ctx, gcReportKey, bytes.NewReader(report), storage.PutOptions{Size: int64(len(report)), ContentType: "application/json"})
	return err
}

// maxGCReport bounds the report read back.
const maxGCReport = 64 << 20

// GCReport reads the report of the last GC pass; storage.ErrNotFound if
// none ran.
func (s *Store) GCReport(ctx context.Context) ([]byte, error) {
	return storage.ReadAll(ctx, s.driver, gcReportKey, maxGCReport)
}
