package registry

import (
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/registry/gc"
)

// Names the tests use for the layout and types the registry package no
// longer owns (they live in registry/content and registry/gc).
var (
	dataKey              = content.DataKey
	blobRecordKey        = content.BlobRecordKey
	linkKey              = content.LinkKey
	manifestKey          = content.ManifestKey
	tagKey               = content.TagKey
	catalogKey           = content.CatalogKey
	referrerKey          = content.ReferrerKey
	encodeStoredManifest = content.EncodeStoredManifest
	encodeBlobRecord     = content.EncodeBlobRecord
	dataPrefix           = content.DataKey("")
)

const (
	gcLeaseKey       = gc.LeaseKey
	mtOCIManifest    = content.MediaTypeOCIManifest
	mtOCIIndex       = content.MediaTypeOCIIndex
	mtDockerManifest = content.MediaTypeDockerManifest
	mtDockerList     = content.MediaTypeDockerList
)

// descriptor is how the tests read a descriptor from an answer.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifestDoc is how the tests read a manifest they built.
type manifestDoc = v1.Manifest
