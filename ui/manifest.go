package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types, which share the OCI documents' JSON shape.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxChildReads bounds the child manifests one tags page reads to size
// its indexes; indexes past it are marked partial.
const maxChildReads = 256

// maxPlatformsListed bounds the platforms a tags row names.
const maxPlatformsListed = 16

// doc is an image manifest or an index: the fields the pages show.
type doc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       v1.Descriptor     `json:"config"`
	Layers       []v1.Descriptor   `json:"layers"`
	Manifests    []v1.Descriptor   `json:"manifests"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// parseDoc decodes a stored manifest (the registry validated it on push;
// the UI still never trusts more than it decodes).
func parseDoc(m Manifest) (*doc, error) {
	var d doc
	if err := json.Unmarshal(m.Body, &d); err != nil {
		return nil, fmt.Errorf("manifest %s is not valid JSON: %w", m.Digest, err)
	}
	if d.MediaType == "" {
		d.MediaType = m.MediaType
	}
	return &d, nil
}

func (d *doc) isIndex() bool {
	return d.MediaType == v1.MediaTypeImageIndex || d.MediaType == dockerManifestList || d.Manifests != nil && d.Layers == nil
}

// artifactType is the manifest's artifact type as the referrers API
// reports it: artifactType, else a non-image config media type.
func (d *doc) artifactType() string {
	if d.ArtifactType != "" {
		return d.ArtifactType
	}
	switch d.Config.MediaType {
	case "", v1.MediaTypeImageConfig, "application/vnd.docker.container.image.v1+json":
		return ""
	}
	return d.Config.MediaType
}

// imageSize is the compressed size an image pull downloads: config and
// layers.
func (d *doc) imageSize() int64 {
	n := d.Config.Size
	for _, l := range d.Layers {
		n += l.Size
	}
	return n
}

func platformString(p *v1.Platform) string {
	if p == nil || p.OS == "" && p.Architecture == "" {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// summary is what the tags table shows of a manifest.
type summary struct {
	Index        bool
	MediaType    string
	ArtifactType string
	Size         int64
	// Children counts the index's manifests; Partial reports children
	// that could not be sized (over the bound, or missing).
	Children  int
	Partial   bool
	Platforms []string
}

// sizer summarises the manifests of one tags page, within a budget of
// child manifest reads.
type sizer struct {
	src        Content
	repo       string
	childReads int
}

// summarize reads a manifest (and, for an index, its children) for the
// tags table.
func (z *sizer) summarize(ctx context.Context, d digest.Digest) (summary, error) {
	m, err := z.src.Manifest(ctx, z.repo, d)
	if err != nil {
		return summary{}, err
	}
	md, err := parseDoc(m)
	if err != nil {
		return summary{}, err
	}
	s := summary{MediaType: md.MediaType, ArtifactType: md.artifactType()}
	if !md.isIndex() {
		s.Size = md.imageSize()
		return s, nil
	}
	s.Index, s.Children = true, len(md.Manifests)
	for i, c := range md.Manifests {
		if i < maxPlatformsListed {
			s.Platforms = append(s.Platforms, platformString(c.Platform))
		}
		if z.childReads <= 0 {
			s.Partial = true
			continue
		}
		z.childReads--
		cm, err := z.src.Manifest(ctx, z.repo, c.Digest)
		if errors.Is(err, ErrNotFound) {
			s.Partial = true
			continue
		}
		if err != nil {
			return summary{}, err
		}
		cd, err := parseDoc(cm)
		if err != nil || cd.isIndex() {
			s.Partial = true
			continue
		}
		s.Size += cd.imageSize()
	}
	return s, nil
}
