package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Manifest media types Stratus accepts.
const (
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// manifestKinds maps each accepted media type to whether it is an index.
var manifestKinds = map[string]bool{
	mtOCIManifest:    false,
	mtDockerManifest: false,
	mtOCIIndex:       true,
	mtDockerList:     true,
}

// descriptor is the subset of an OCI descriptor Stratus reads.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifestDoc is the union of the image manifest and index shapes.
type manifestDoc struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// reference is a digest a manifest needs in its repository.
type reference struct {
	Digest   Digest
	Size     int64
	Manifest bool   // a child manifest of an index, not a blob
	Where    string // the descriptor's place in the manifest, for messages
}

// parsedManifest is a validated manifest.
type parsedManifest struct {
	MediaType    string
	ArtifactType string // for the referrers API
	Annotations  map[string]string
	Subject      *Digest
	Refs         []reference
	// rawAnnotations is the manifest's annotations object exactly as
	// pushed (set by parseNewManifest): the referrer record repeats it
	// verbatim, so the record is never larger than the manifest.
	rawAnnotations json.RawMessage
}

// maxArtifactTypeLen bounds artifactType (or the config media type standing
// in for it): it must be a media type, at most 255 characters (RFC 6838
// §4.2). It bounds the one field a referrer record re-encodes.
const maxArtifactTypeLen = 255

func errManifestInvalid(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, codeManifestInvalid, format, args...)
}

// parseManifest validates a manifest body against the Content-Type it was
// pushed with. It never trusts the body further than it checks it: every
// descriptor's digest is parsed, sizes are non-negative, and the media type
// in the body (if any) must agree with the header.
//
// parseManifest is also how stored manifests are read back (GC, delete), so
// it accepts whatever was ever accepted; pushes go through parseNewManifest.
func parseManifest(contentType string, body []byte) (*parsedManifest, error) {
	var doc manifestDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, errManifestInvalid("manifest is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, errManifestInvalid("manifest has data after the JSON document")
	}
	mt := ""
	if contentType != "" {
		parsed, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, errManifestInvalid("Content-Type %q: %v", contentType, err)
		}
		mt = parsed
	}
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = doc.MediaType
	}
	if mt == "" {
		// Neither header nor body says: infer, as the image spec allows
		// mediaType to be omitted.
		switch {
		case doc.Manifests != nil:
			mt = mtOCIIndex
		case doc.Config != nil:
			mt = mtOCIManifest
		default:
			return nil, errManifestInvalid("cannot tell the manifest's media type: set Content-Type")
		}
	}
	isIndex, known := manifestKinds[mt]
	if !known {
		return nil, errManifestInvalid("unsupported manifest media type %q (OCI image manifest and index, Docker schema2 manifest and manifest list are)", mt)
	}
	if doc.MediaType != "" && doc.MediaType != mt {
		return nil, errManifestInvalid("the manifest's mediaType %q does not match its Content-Type %q", doc.MediaType, mt)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return nil, errManifestInvalid("schemaVersion must be 2")
	}
	if strings.HasPrefix(mt, "application/vnd.docker.") && doc.MediaType == "" {
		return nil, errManifestInvalid("a Docker schema2 manifest must carry its mediaType")
	}
	pm := &parsedManifest{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	var err error
	if isIndex {
		err = doc.indexRefs(pm)
	} else {
		err = doc.imageRefs(pm)
	}
	if err != nil {
		return nil, err
	}
	if doc.Subject != nil {
		d, err := checkDescriptor(*doc.Subject, "subject")
		if err != nil {
			return nil, err
		}
		pm.Subject = &d
	}
	return pm, nil
}

// indexRefs adds the child manifests of an index to pm.Refs.
func (doc *manifestDoc) indexRefs(pm *parsedManifest) error {
	if doc.Config != nil || doc.Layers != nil {
		return errManifestInvalid("an index must not have config or layers")
	}
	if doc.Manifests == nil {
		return errManifestInvalid("an index needs a manifests array")
	}
	for i, c := range doc.Manifests {
		where := fmt.Sprintf("manifests[%d]", i)
		d, err := checkDescriptor(c, where)
		if err != nil {
			return err
		}
		pm.Refs = append(pm.Refs, reference{Digest: d, Size: c.Size, Manifest: true, Where: where})
	}
	return nil
}

// imageRefs adds the config and layers of an image manifest to pm.Refs
// and defaults the artifact type to the config's media type.
func (doc *manifestDoc) imageRefs(pm *parsedManifest) error {
	if doc.Manifests != nil {
		return errManifestInvalid("an image manifest must not have a manifests array")
	}
	if doc.Config == nil {
		return errManifestInvalid("an image manifest needs a config descriptor")
	}
	d, err := checkDescriptor(*doc.Config, "config")
	if err != nil {
		return err
	}
	pm.Refs = append(pm.Refs, reference{Digest: d, Size: doc.Config.Size, Where: "config"})
	if pm.ArtifactType == "" {
		pm.ArtifactType = doc.Config.MediaType
	}
	for i, l := range doc.Layers {
		where := fmt.Sprintf("layers[%d]", i)
		d, err := checkDescriptor(l, where)
		if err != nil {
			return err
		}
		if foreignLayer(l) {
			continue // its bytes live elsewhere by design
		}
		pm.Refs = append(pm.Refs, reference{Digest: d, Size: l.Size, Where: where})
	}
	return nil
}

// parseNewManifest is parseManifest for a manifest being pushed: it first
// refuses bodies that parsers read differently (duplicate keys, keys that
// match the spec's only case-insensitively; see checkJSONKeys). The stricter
// check is not applied to stored manifests: one pushed before it existed
// must still be read by GC, or the blobs it uses would look unreferenced.
func parseNewManifest(contentType string, body []byte) (*parsedManifest, error) {
	if err := checkJSONKeys(body); err != nil {
		if errors.Is(err, errJSONKey) {
			return nil, errManifestInvalid("%v", err)
		}
		return nil, errManifestInvalid("manifest is not valid JSON: %v", err)
	}
	pm, err := parseManifest(contentType, body)
	if err != nil {
		return nil, err
	}
	if len(pm.ArtifactType) > maxArtifactTypeLen {
		return nil, errManifestInvalid("artifactType (or the config's mediaType) is %d bytes; a media type has at most %d", len(pm.ArtifactType), maxArtifactTypeLen)
	}
	var raw struct {
		Annotations json.RawMessage `json:"annotations"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errManifestInvalid("manifest is not valid JSON: %v", err)
	}
	if len(pm.Annotations) > 0 {
		pm.rawAnnotations = raw.Annotations
	}
	return pm, nil
}

func checkDescriptor(desc descriptor, where string) (Digest, error) {
	d, err := ParseDigest(desc.Digest)
	if err != nil {
		return Digest{}, errManifestInvalid("%s: %v", where, err)
	}
	if desc.Size < 0 {
		return Digest{}, errManifestInvalid("%s: negative size", where)
	}
	if desc.MediaType == "" {
		return Digest{}, errManifestInvalid("%s: mediaType is required", where)
	}
	return d, nil
}

// foreignLayer reports layers a registry is not expected to hold: the
// non-distributable media types, and layers fetched from their urls.
func foreignLayer(l descriptor) bool {
	return len(l.URLs) > 0 ||
		strings.Contains(l.MediaType, ".nondistributable.") ||
		strings.HasPrefix(l.MediaType, "application/vnd.docker.image.rootfs.foreign.")
}

// storedManifest is the object at repos/<name>/_manifests/<alg>/<hex>: the
// media type on the first line, then the manifest exactly as pushed. One
// object keeps a manifest GET to one read.
func encodeStoredManifest(mediaType string, body []byte) []byte {
	out := make([]byte, 0, len(mediaType)+1+len(body))
	out = append(out, mediaType...)
	out = append(out, '\n')
	return append(out, body...)
}

// maxMediaTypeLine bounds the first line of a stored manifest: media types
// are at most 255 characters (RFC 6838 §4.2), and Stratus stores only the
// few it accepts.
const maxMediaTypeLine = 256

// storedManifestSize returns the size of the manifest body stored at key
// (as pushed, without the media type line) from a Stat and a read of the
// first line, so checking an index's children never reads their bodies.
// Manifest keys are content-addressed: the object cannot change between
// the two calls, only disappear (ErrNotFound).
func (g *Registry) storedManifestSize(ctx context.Context, key string) (int64, error) {
	info, err := g.store.Stat(ctx, key)
	if err != nil {
		return 0, err
	}
	rc, err := g.store.Reader(ctx, key, 0, min(info.Size, maxMediaTypeLine))
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	head, err := io.ReadAll(io.LimitReader(rc, maxMediaTypeLine))
	if err != nil {
		return 0, fmt.Errorf("read the media type line of %s: %w", key, err)
	}
	i := bytes.IndexByte(head, '\n')
	if i <= 0 {
		return 0, fmt.Errorf("stored manifest %s has no media type line", key)
	}
	return info.Size - int64(i) - 1, nil
}

func decodeStoredManifest(b []byte) (mediaType string, body []byte, err error) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 {
		return "", nil, fmt.Errorf("stored manifest has no media type line")
	}
	return string(b[:i]), b[i+1:], nil
}
