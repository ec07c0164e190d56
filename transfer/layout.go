// Package transfer moves repositories between the content store and an OCI
// image layout (a directory, or a tar of one), for networks with no path to
// the registry: export on the connected side, carry the layout, import on
// the disconnected side. It works through registry/content only, so an
// import takes the same pins and commits as a push and is safe next to
// running replicas and online GC.
//
// One layout carries several repositories. Each entry of index.json names
// its repository in the AnnotationRepository annotation; tagged manifests
// carry their tag in the standard org.opencontainers.image.ref.name, and
// referrers (manifests with a subject) are listed untagged. Index children,
// configs and layers are reachable from those entries and are not listed.
package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stratus-registry/stratus/registry/content"
)

// AnnotationRepository names the repository an index.json entry belongs to.
const AnnotationRepository = "io.stratus.repository"

// Layout file names (image-spec image-layout.md).
const (
	layoutFile = v1.ImageLayoutFile // "oci-layout"
	indexFile  = "index.json"
	blobsDir   = v1.ImageBlobsDir // "blobs"
)

// maxIndexSize bounds index.json: it lists one small descriptor per tag,
// so 16 MiB is tens of thousands of tags.
const maxIndexSize = 16 << 20

// maxLayoutFileSize bounds the oci-layout marker.
const maxLayoutFileSize = 4096

// ErrLayoutInvalid: the layout does not follow the image-layout spec or
// Stratus's conventions for it; the wrapping error says where.
var ErrLayoutInvalid = errors.New("invalid OCI image layout")

// DigestMismatchError: a file of the layout does not hash to the digest
// its name and descriptor claim. Nothing is recorded for the digest.
type DigestMismatchError struct {
	Want, Got digest.Digest
	File      string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s: content hashes to %s, not %s: the archive is damaged or was tampered with", e.File, e.Got, e.Want)
}

// Entry is one index.json entry: a root manifest of one repository, tagged
// (Tag set) or a referrer kept untagged.
type Entry struct {
	Repository string
	Tag        string
	Descriptor v1.Descriptor
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLayoutInvalid, fmt.Sprintf(format, args...))
}

// blobPath is the layout path of d.
func blobPath(d digest.Digest) string {
	return path.Join(blobsDir, d.Algorithm().String(), d.Encoded())
}

// parseLayoutFile checks the oci-layout marker.
func parseLayoutFile(b []byte) error {
	var l v1.ImageLayout
	if err := decodeStrict(b, &l); err != nil {
		return invalid("%s: %v", layoutFile, err)
	}
	if l.Version != v1.ImageLayoutVersion {
		return invalid("%s: imageLayoutVersion %q, want %q", layoutFile, l.Version, v1.ImageLayoutVersion)
	}
	return nil
}

// manifestMediaTypes are the root media types an entry may have.
var manifestMediaTypes = map[string]bool{
	content.MediaTypeOCIManifest:    true,
	content.MediaTypeOCIIndex:       true,
	content.MediaTypeDockerManifest: true,
	content.MediaTypeDockerList:     true,
}

// parseIndex decodes index.json strictly (unknown fields refused, no
// trailing data) and checks every entry: a supported digest, a manifest
// media type, a size within maxManifest, a valid repository name and, if
// tagged, a valid tag that no other entry of the repository also claims.
func parseIndex(b []byte, maxManifest int64) ([]Entry, error) {
	var idx v1.Index
	if err := decodeStrict(b, &idx); err != nil {
		return nil, invalid("%s: %v", indexFile, err)
	}
	if idx.SchemaVersion != 2 {
		return nil, invalid("%s: schemaVersion %d, want 2", indexFile, idx.SchemaVersion)
	}
	if idx.MediaType != "" && idx.MediaType != v1.MediaTypeImageIndex {
		return nil, invalid("%s: mediaType %q, want %q", indexFile, idx.MediaType, v1.MediaTypeImageIndex)
	}
	entries := make([]Entry, 0, len(idx.Manifests))
	tagged := make(map[string]digest.Digest)
	for i, desc := range idx.Manifests {
		e, err := checkEntry(desc, maxManifest)
		if err != nil {
			return nil, invalid("%s: manifests[%d]: %v", indexFile, i, err)
		}
		if e.Tag != "" {
			key := e.Repository + ":" + e.Tag
			if prev, dup := tagged[key]; dup && prev != desc.Digest {
				return nil, invalid("%s: manifests[%d]: tag %s is listed twice with different digests", indexFile, i, key)
			}
			tagged[key] = desc.Digest
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func checkEntry(desc v1.Descriptor, maxManifest int64) (Entry, error) {
	if _, err := content.ParseDigest(desc.Digest.String()); err != nil {
		return Entry{}, err
	}
	if !manifestMediaTypes[desc.MediaType] {
		return Entry{}, fmt.Errorf("media type %q is not a manifest's", desc.MediaType)
	}
	if desc.Size <= 0 || desc.Size > maxManifest {
		return Entry{}, fmt.Errorf("size %d is outside 1..%d", desc.Size, maxManifest)
	}
	repo := desc.Annotations[AnnotationRepository]
	if !content.ValidName(repo) {
		return Entry{}, fmt.Errorf("annotation %s: %q is not a repository name", AnnotationRepository, repo)
	}
	tag, hasTag := desc.Annotations[v1.AnnotationRefName]
	if hasTag && !content.ValidTag(tag) {
		return Entry{}, fmt.Errorf("annotation %s: %q is not a tag", v1.AnnotationRefName, tag)
	}
	return Entry{Repository: repo, Tag: tag, Descriptor: desc}, nil
}

// decodeStrict decodes one JSON document into v, refusing unknown fields
// and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON document")
	}
	return nil
}

// newIndex is the index.json of entries.
func newIndex(entries []Entry) v1.Index {
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: make([]v1.Descriptor, 0, len(entries))}
	for _, e := range entries {
		desc := v1.Descriptor{MediaType: e.Descriptor.MediaType, Digest: e.Descriptor.Digest, Size: e.Descriptor.Size, ArtifactType: e.Descriptor.ArtifactType,
			Annotations: map[string]string{AnnotationRepository: e.Repository}}
		if e.Tag != "" {
			desc.Annotations[v1.AnnotationRefName] = e.Tag
		}
		idx.Manifests = append(idx.Manifests, desc)
	}
	return idx
}

// cleanMember maps a tar member name to a layout path, refusing absolute
// paths and any ".." component: a blob path comes only from a digest, so a
// member that escapes the layout is never read.
func cleanMember(name string) (string, bool) {
	name = strings.TrimPrefix(name, "./")
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", false
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", false
		}
	}
	return path.Clean(name), true
}
