package content

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// The bucket layout (docs/architecture.md, "Bucket layout"). Every key
// Stratus writes is built here, so the layout can be read in one place:
//
//	blobs/<alg>/<hex[0:2]>/<hex>                   blob record: data key + size
//	data/<upload-id>                               blob bytes, written once
//	datarefs/<upload-id>/<alg>-<hex>               data index: the data is blob <alg>:<hex>'s
//	repos/<name>/_links/<alg>/<hex>                the repository may serve the blob
//	repos/<name>/_manifests/<alg>/<hex>            media type line + manifest bytes
//	repos/<name>/_tags/<tag>                       -> manifest digest
//	repos/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>
//	catalog/<name>/_repo                           one key per repository
//	gc/last-run.json                               the last GC report
//
// Per-repository keys put an underscore component after the name: name
// components cannot start with "_", so "repos/a/_tags/" never lists anything
// of repository "a/tags".
//
// The key functions are exported for tests and diagnostics that need to
// look at the bucket directly; every caller in the server goes through the
// typed operations of Store and Repository instead.

// BlobRecordKey is the key of the record of d.
func BlobRecordKey(d digest.Digest) string {
	hex := d.Encoded()
	return blobsPrefix + d.Algorithm().String() + "/" + hex[:2] + "/" + hex
}

const blobsPrefix = "blobs/"

// DataKey is the key of the bytes an upload wrote.
func DataKey(uploadID string) string { return dataPrefix + uploadID }

const dataPrefix = "data/"

// DataIndexKey is the data index entry saying that uploadID's data holds
// blob d, written before d's record (see dataindex.go).
func DataIndexKey(uploadID string, d digest.Digest) string {
	return dataIndexPrefix + uploadID + "/" + d.Algorithm().String() + "-" + d.Encoded()
}

const dataIndexPrefix = "datarefs/"

// dataIndexFromKey parses datarefs/<upload-id>/<alg>-<hex>.
func dataIndexFromKey(key string) (uploadID string, d digest.Digest, ok bool) {
	rest, ok := strings.CutPrefix(key, dataIndexPrefix)
	if !ok {
		return "", "", false
	}
	id, ref, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		return "", "", false
	}
	d, err := ParseDigest(strings.Replace(ref, "-", ":", 1))
	return id, d, err == nil
}

func repoPrefix(name string) string { return "repos/" + name + "/" }

func algHex(d digest.Digest) string { return d.Algorithm().String() + "/" + d.Encoded() }

func linksPrefix(name string) string { return repoPrefix(name) + "_links/" }

// LinkKey is the key that lets repository name serve blob d.
func LinkKey(name string, d digest.Digest) string { return linksPrefix(name) + algHex(d) }

func manifestsPrefix(name string) string { return repoPrefix(name) + "_manifests/" }

// ManifestKey is the key of manifest d in repository name.
func ManifestKey(name string, d digest.Digest) string { return manifestsPrefix(name) + algHex(d) }

func tagsPrefix(name string) string { return repoPrefix(name) + "_tags/" }

// TagKey is the key of a tag of repository name.
func TagKey(name, tag string) string { return tagsPrefix(name) + tag }

func allReferrersPrefix(name string) string { return repoPrefix(name) + "_referrers/" }

func referrersPrefix(name string, subject digest.Digest) string {
	return allReferrersPrefix(name) + algHex(subject) + "/"
}

// ReferrerKey is the key of the record of referrer d of subject.
func ReferrerKey(name string, subject, d digest.Digest) string {
	return referrersPrefix(name, subject) + d.Algorithm().String() + "-" + d.Encoded()
}

const (
	catalogPrefix = "catalog/"
	catalogSuffix = "/_repo"
)

// CatalogKey is the catalog entry of repository name.
func CatalogKey(name string) string { return catalogPrefix + name + catalogSuffix }

// gcReportKey holds the report of the last GC pass.
const gcReportKey = "gc/last-run.json"

// digestFromKey parses the "<alg>/<hex>" tail of a manifest or link key.
func digestFromKey(key, prefix string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", false
	}
	alg, hex, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	d, err := ParseDigest(alg + ":" + hex)
	return d, err == nil
}

// digestFromRecordKey parses blobs/<alg>/<xx>/<hex>.
func digestFromRecordKey(key string) (digest.Digest, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0]+"/" != blobsPrefix {
		return "", false
	}
	d, err := ParseDigest(parts[1] + ":" + parts[3])
	return d, err == nil
}

// referrerFromKey parses <alg>/<subject-hex>/<alg>-<hex> under a
// repository's referrers prefix.
func referrerFromKey(rest string) (subject, ref digest.Digest, ok bool) {
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", false
	}
	subj, err1 := ParseDigest(parts[0] + ":" + parts[1])
	r, err2 := ParseDigest(strings.Replace(parts[2], "-", ":", 1))
	return subj, r, err1 == nil && err2 == nil
}
