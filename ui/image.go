package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// maxConfigBytes bounds the config blob the image page reads.
	maxConfigBytes = 1 << 20
	// maxLayersDrawn bounds the layers listed and drawn; the rest are
	// summed in one line.
	maxLayersDrawn = 200
	// barWidth is the layer bar's viewBox width.
	barWidth = 1000.0
)

type imagePage struct {
	Repo        string
	Digest      digest.Digest
	MediaType   string
	ArtType     string
	Size        int64
	Layers      []layerRow
	MoreLayers  int
	MoreBytes   int64
	Config      *configSummary
	ConfigNote  string
	Annotations []kv
	Subject     *v1.Descriptor
	CanDelete   bool
}

type layerRow struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
	X, W      float64 // the rect in the bar's viewBox
	Class     string  // alternating fill class
}

type kv struct {
	Key, Value string
	// Link is Value when it is an http(s) URL, for the annotations that
	// are URLs; never any other scheme.
	Link string
}

type configSummary struct {
	Platform   string
	Created    string
	Entrypoint []string
	Cmd        []string
	EnvKeys    []string
	Labels     []kv
	User       string
	WorkingDir string
}

type indexPage struct {
	Repo        string
	Digest      digest.Digest
	MediaType   string
	Platforms   []platformRow
	Annotations []kv
	CanDelete   bool
}

type platformRow struct {
	Platform  string
	Digest    digest.Digest
	MediaType string
	Size      int64
}

func (u *UI) manifest(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	if err := u.visible(r, v, rt.repo); err != nil {
		return err
	}
	m, err := u.src.Manifest(r.Context(), rt.repo, rt.digest)
	if err != nil {
		return err
	}
	md, err := parseDoc(m)
	if err != nil {
		return errBadRequest(err.Error())
	}
	if md.isIndex() {
		p := indexPage{Repo: rt.repo, Digest: rt.digest, MediaType: md.MediaType, Annotations: sortedKV(md.Annotations),
			CanDelete: u.canDelete(r, v, rt.repo)}
		for _, c := range md.Manifests {
			p.Platforms = append(p.Platforms, platformRow{Platform: platformString(c.Platform), Digest: c.Digest, MediaType: c.MediaType, Size: c.Size})
		}
		u.render(w, r, v, http.StatusOK, "index", rt.repo+"@"+shortDigest(rt.digest), p)
		return nil
	}
	p := imagePage{Repo: rt.repo, Digest: rt.digest, MediaType: md.MediaType, ArtType: md.artifactType(), Size: md.imageSize(),
		Annotations: sortedKV(md.Annotations), Subject: md.Subject, CanDelete: u.canDelete(r, v, rt.repo)}
	p.Layers, p.MoreLayers, p.MoreBytes = layerBar(md.Layers)
	if p.ArtType == "" {
		p.Config, p.ConfigNote, err = u.readConfig(r, rt.repo, md.Config)
		if err != nil {
			return err
		}
	} else {
		p.ConfigNote = "an artifact: its config is not an image configuration"
	}
	u.render(w, r, v, http.StatusOK, "image", rt.repo+"@"+shortDigest(rt.digest), p)
	return nil
}

// layerBar lays the layers out along one bar of the image's layer bytes.
func layerBar(layers []v1.Descriptor) (rows []layerRow, moreLayers int, moreBytes int64) {
	var total int64
	for _, l := range layers {
		total += max(l.Size, 0)
	}
	x := 0.0
	for i, l := range layers {
		if i >= maxLayersDrawn {
			moreLayers++
			moreBytes += l.Size
			continue
		}
		wd := 0.0
		if total > 0 {
			wd = barWidth * float64(max(l.Size, 0)) / float64(total)
		}
		cls := "layer-a"
		if i%2 == 1 {
			cls = "layer-b"
		}
		rows = append(rows, layerRow{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size, X: x, W: wd, Class: cls})
		x += wd
	}
	return rows, moreLayers, moreBytes
}

// readConfig reads and summarises an image config. A config that is
// missing, too large or not JSON is a note on the page, not a failure.
func (u *UI) readConfig(r *http.Request, repo string, desc v1.Descriptor) (*configSummary, string, error) {
	b, err := u.src.Blob(r.Context(), repo, desc.Digest, maxConfigBytes)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, "the config blob is missing", nil
	case errors.Is(err, ErrTooLarge):
		return nil, "the config blob is larger than the UI reads", nil
	case err != nil:
		return nil, "", err
	}
	var img v1.Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, "the config blob is not an image configuration", nil
	}
	c := &configSummary{Platform: platformString(&img.Platform), Entrypoint: img.Config.Entrypoint, Cmd: img.Config.Cmd,
		Labels: sortedKV(img.Config.Labels), User: img.Config.User, WorkingDir: img.Config.WorkingDir}
	if img.Created != nil && !img.Created.IsZero() {
		c.Created = img.Created.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	// Only the names: values are often credentials baked into an image.
	for _, e := range img.Config.Env {
		k, _, _ := strings.Cut(e, "=")
		c.EnvKeys = append(c.EnvKeys, k)
	}
	return c, "", nil
}

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{Key: k, Value: v, Link: httpLink(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// httpLink is s when it is an absolute http or https URL, else "".
func httpLink(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}
