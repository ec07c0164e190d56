package content

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types Stratus accepts. The OCI ones come from image-spec;
// the Docker schema2 ones are Stratus's own constants because image-spec
// does not define them (they belong to Docker's distribution format, which
// clients still push).
const (
	MediaTypeOCIManifest    = v1.MediaTypeImageManifest
	MediaTypeOCIIndex       = v1.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

const (
	mtOCIManifest    = MediaTypeOCIManifest
	mtOCIIndex       = MediaTypeOCIIndex
	mtDockerManifest = MediaTypeDockerManifest
	mtDockerList     = MediaTypeDockerList
)

// manifestKinds maps each accepted media type to whether it is an index.
var manifestKinds = map[string]bool{
	mtOCIManifest:    false,
	mtDockerManifest: false,
	mtOCIIndex:       true,
	mtDockerList:     true,
}

// descriptor is image-spec's descriptor; Docker schema2 descriptors have
// the same fields.
type descriptor = v1.Descriptor

// manifestDoc is the union of the image manifest (v1.Manifest) and index
// (v1.Index) shapes, with image-spec's descriptor type. It is not one of
// image-spec's types because one decode must tell which shape a body has
// and whether a field is absent or empty: v1.Manifest's config is a value
// (absent reads as empty) and schemaVersion an int (absent reads as 0),
// while the validation below must refuse an index with a config, an image
// without one, and a missing schemaVersion.
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

// Ref is a digest a manifest needs in its repository.
type Ref struct {
	Digest   digest.Digest
	Size     int64
	Manifest bool   // a child manifest of an index, not a blob
	Where    string // the descriptor's place in the manifest, for messages
}

// Parsed is a validated manifest.
type Parsed struct {
	MediaType    string
	ArtifactType string // for the referrers API
	Annotations  map[string]string
	Subject      *digest.Digest
	Refs         []Ref
	// RawAnnotations is the manifest's annotations object exactly as
	// pushed (set by ParseNewManifest): the referrer record repeats it
	// verbatim, so the record is never larger than the manifest.
	RawAnnotations json.RawMessage
}

// maxArtifactTypeLen bounds artifactType (or the config media type standing
// in for it): it must be a media type, at most 255 characters (RFC 6838
// §4.2). It bounds the one field a referrer record re-encodes.
const maxArtifactTypeLen = 255

func errManifestInvalid(format string, args ...any) error {
	return &ManifestInvalidError{Reason: fmt.Sprintf(format, args...)}
}

// ParseManifest validates a manifest body against the Content-Type it was
// pushed with. It never trusts the body further than it checks it: every
// descriptor's digest is parsed, sizes are non-negative, and the media type
// in the body (if any) must agree with the header.
//
// ParseManifest is also how stored manifests are read back (GC, delete), so
// it accepts whatever was ever accepted; pushes go through ParseNewManifest.
func ParseManifest(contentType string, body []byte) (*Parsed, error) {
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
	pm := &Parsed{MediaType: mt, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
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
func (doc *manifestDoc) indexRefs(pm *Parsed) error {
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
		pm.Refs = append(pm.Refs, Ref{Digest: d, Size: c.Size, Manifest: true, Where: where})
	}
	return nil
}

// imageRefs adds the config and layers of an image manifest to pm.Refs
// and defaults the artifact type to the config's media type.
func (doc *manifestDoc) imageRefs(pm *Parsed) error {
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
	pm.Refs = append(pm.Refs, Ref{Digest: d, Size: doc.Config.Size, Where: "config"})
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
		pm.Refs = append(pm.Refs, Ref{Digest: d, Size: l.Size, Where: where})
	}
	return nil
}

// ParseNewManifest is ParseManifest for a manifest being pushed: it first
// refuses bodies that parsers read differently (duplicate keys, keys that
// match the spec's only case-insensitively; see checkJSONKeys). The stricter
// check is not applied to stored manifests: one pushed before it existed
// must still be read by GC, or the blobs it uses would look unreferenced.
func ParseNewManifest(contentType string, body []byte) (*Parsed, error) {
	if err := checkJSONKeys(body); err != nil {
		if errors.Is(err, errJSONKey) {
			return nil, errManifestInvalid("%v", err)
		}
		return nil, errManifestInvalid("manifest is not valid JSON: %v", err)
	}
	pm, err := ParseManifest(contentType, body)
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
		pm.RawAnnotations = raw.Annotations
	}
	return pm, nil
}

func checkDescriptor(desc descriptor, where string) (digest.Digest, error) {
	d, err := ParseDigest(desc.Digest.String())
	if err != nil {
		return "", errManifestInvalid("%s: %v", where, err)
	}
	if desc.Size < 0 {
		return "", errManifestInvalid("%s: negative size", where)
	}
	if desc.MediaType == "" {
		return "", errManifestInvalid("%s: mediaType is required", where)
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

func decodeStoredManifest(b []byte) (mediaType string, body []byte, err error) {
	i := bytes.IndexByte(b, '\n')
	if i <= 0 {
		return "", nil, fmt.Errorf("stored manifest has no media type line")
	}
	return string(b[:i]), b[i+1:], nil
}
