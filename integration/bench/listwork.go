package main

// The manifest and listing workloads: manifest PUT/GET by tag, tag list,
// catalog and referrers, over content that setup creates untimed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

type descriptor struct {
	MediaType    string `json:"mediaType"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
	ArtifactType string `json:"artifactType,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// base blobs every manifest of the benchmark references.
var (
	configJSON = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layerBytes = []byte("stratus benchmark layer\n")
)

func sha(b []byte) string {
	d, _ := descriptorOf("", b)
	return d.Digest
}

func descriptorOf(mt string, b []byte) (descriptor, error) {
	h := newSHA()
	h.Write(b)
	return descriptor{MediaType: mt, Digest: h.digest(), Size: int64(len(b))}, nil
}

// imageManifest returns a manifest over the base blobs; note makes it unique.
func imageManifest(note string, subject *descriptor) []byte {
	cfg, _ := descriptorOf(mtConfig, configJSON)
	layer, _ := descriptorOf(mtLayer, layerBytes)
	m := manifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: []descriptor{layer},
		Annotations: map[string]string{"org.stratus.bench": note}}
	if subject != nil {
		m.ArtifactType = "application/vnd.stratus.bench.signature"
		m.Subject = subject
	}
	b, _ := json.Marshal(m)
	return b
}

// setup creates, untimed, what the listing workloads list: a repository
// with Tags tags, Repos repositories for the catalog and a subject with
// Referrers referrers.
func (rn *runner) setup(ctx context.Context, ct *contender) error {
	pr := rn.prof
	c := ct.c
	octx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, b := range [][]byte{configJSON, layerBytes} {
		if _, err := c.pushBytes(octx, "bench/base", b); err != nil {
			return fmt.Errorf("base blobs: %w", err)
		}
	}
	mount := func(ctx context.Context, repo string) error {
		for _, b := range [][]byte{configJSON, layerBytes} {
			if err := c.mount(ctx, repo, "bench/base", sha(b)); err != nil {
				return fmt.Errorf("mount into %s: %w", repo, err)
			}
		}
		return nil
	}
	for _, repo := range []string{"bench/manifests", "bench/tags", "bench/referrers"} {
		if err := mount(octx, repo); err != nil {
			return err
		}
	}
	tagged := imageManifest("tags", nil)
	if _, _, err := parallel(octx, pr.Tags, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		return c.putManifest(ctx, "bench/tags", fmt.Sprintf("t%05d", i), mtManifest, tagged)
	}); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	if _, _, err := parallel(octx, pr.Repos, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		repo := fmt.Sprintf("bench/catalog/r%05d", i)
		if err := mount(ctx, repo); err != nil {
			return err
		}
		return c.putManifest(ctx, repo, "latest", mtManifest, imageManifest(repo, nil))
	}); err != nil {
		return fmt.Errorf("catalog repositories: %w", err)
	}
	subject := imageManifest("subject", nil)
	if err := c.putManifest(octx, "bench/referrers", "subject", mtManifest, subject); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	sd, _ := descriptorOf(mtManifest, subject)
	if _, _, err := parallel(octx, pr.Referrers, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		m := imageManifest("referrer "+strconv.Itoa(i), &sd)
		d, _ := descriptorOf(mtManifest, m)
		return c.putManifest(ctx, "bench/referrers", d.Digest, mtManifest, m)
	}); err != nil {
		return fmt.Errorf("referrers: %w", err)
	}
	return nil
}

// manifests PUTs Manifests distinct manifests by tag, then GETs them by tag.
func (rn *runner) manifests(ctx context.Context, p *participant, round int) error {
	pr := rn.prof
	c := p.reg.c
	tag := func(i int) string { return fmt.Sprintf("r%d-%05d", round, i) }
	lats, el, err := parallel(ctx, pr.Manifests, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		return c.putManifest(ctx, "bench/manifests", tag(i), mtManifest, imageManifest(tag(i), nil))
	})
	if err != nil {
		return fmt.Errorf("PUT: %w", err)
	}
	rn.res.throughput(rn.backend, metricDef{fmt.Sprintf("manifest PUT, c=%d", pr.Concurrency), unitOps, ""}, p.name, 0, pr.Manifests, el, lats)
	lats, el, err = parallel(ctx, pr.Manifests, pr.Concurrency, pr.OpTimeout, func(ctx context.Context, i int) error {
		return c.getManifest(ctx, "bench/manifests", tag(i), mtManifest)
	})
	if err != nil {
		return fmt.Errorf("GET: %w", err)
	}
	rn.res.throughput(rn.backend, metricDef{fmt.Sprintf("manifest GET, c=%d", pr.Concurrency), unitOps, ""}, p.name, 0, pr.Manifests, el, lats)
	return nil
}

// listing times ListIters sequential complete listings (all pages).
func (rn *runner) listing(ctx context.Context, p *participant, m metricDef, want int, exact bool, fn func(ctx context.Context) (int, error)) error {
	pr := rn.prof
	lats, el, err := parallel(ctx, pr.ListIters, 1, pr.OpTimeout, func(ctx context.Context, i int) error {
		n, err := fn(ctx)
		if err != nil {
			return err
		}
		if n < want || (exact && n != want) {
			return fmt.Errorf("listed %d entries, want %d", n, want)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rn.res.throughput(rn.backend, m, p.name, 0, pr.ListIters, el, lats)
	return nil
}

func (rn *runner) tagsList(ctx context.Context, p *participant, round int) error {
	m := metricDef{fmt.Sprintf("tags list, %d tags", rn.prof.Tags), unitOps, ""}
	return rn.listing(ctx, p, m, rn.prof.Tags, true, func(ctx context.Context) (int, error) {
		return p.reg.c.list(ctx, "/v2/bench/tags/tags/list", "tags")
	})
}

func (rn *runner) catalog(ctx context.Context, p *participant, round int) error {
	m := metricDef{fmt.Sprintf("_catalog, %d+ repos", rn.prof.Repos), unitOps, ""}
	return rn.listing(ctx, p, m, rn.prof.Repos, false, func(ctx context.Context) (int, error) {
		return p.reg.c.list(ctx, "/v2/_catalog", "repositories")
	})
}

func (rn *runner) referrers(ctx context.Context, p *participant, round int) error {
	m := metricDef{fmt.Sprintf("referrers, %d", rn.prof.Referrers), unitOps, ""}
	sd, _ := descriptorOf(mtManifest, imageManifest("subject", nil))
	err := rn.listing(ctx, p, m, rn.prof.Referrers, true, func(ctx context.Context) (int, error) {
		return p.reg.c.referrers(ctx, "bench/referrers", sd.Digest)
	})
	// A registry without the referrers API (the reference registry has
	// none) answers 404 on the route itself: a result, not a failure.
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		rn.res.setNote(rn.backend, m, p.name, "not supported (404 on GET /v2/<name>/referrers/<digest>)")
		return nil
	}
	return err
}
