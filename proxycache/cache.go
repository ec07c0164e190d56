package proxycache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/content"
	"github.com/stratus-registry/stratus/storage"
)

// Deps are the services a Cache runs on: the registry's own store and
// locking, so that every replica sees what any of them fetched.
type Deps struct {
	Storage storage.Driver
	Locking locking.Store
	Logger  *slog.Logger
	// MaxManifestSize bounds a fetched manifest, as it bounds a pushed one.
	MaxManifestSize int64
	// Transport dials the upstreams; nil is http.DefaultTransport.
	Transport http.RoundTripper
	// Registerer takes the cache's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Cache is the registry.Mirror of the configured upstreams.
type Cache struct {
	content   *content.Store
	leases    locking.Leases
	logger    *slog.Logger
	names     *names
	upstreams map[string]*upstream // by prefix
	maxSize   int64
	leaseWait time.Duration
	fetchMax  time.Duration
	metrics   *metrics
	now       func() time.Time
	// pollEvery is how often a pull waiting for another's fetch looks.
	pollEvery time.Duration
	// manifests joins this process's concurrent upstream checks of one
	// reference, so a burst of cold pulls costs one upstream request.
	manifests singleflight.Group
}

var _ registry.Mirror = (*Cache)(nil)

// manifestTimeout bounds one upstream manifest check or fetch.
const manifestTimeout = 2 * time.Minute

// New builds the cache; cfg has had SetDefaults and Validate.
func New(cfg Config, deps Deps) (*Cache, error) {
	if deps.Storage == nil || deps.Locking == nil {
		return nil, errors.New("proxycache: storage and locking are required")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rt := deps.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cs, err := content.New(deps.Storage, deps.Locking, content.Options{MaxManifestSize: deps.MaxManifestSize, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("proxycache: %w", err)
	}
	n, err := newNames(cfg.Upstreams)
	if err != nil {
		return nil, fmt.Errorf("proxycache: %w", err)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("proxycache: %w", err)
	}
	c := &Cache{content: cs, leases: deps.Locking, logger: logger, names: n, upstreams: map[string]*upstream{},
		maxSize: deps.MaxManifestSize, leaseWait: cfg.LeaseWait, fetchMax: cfg.FetchTimeout, metrics: m,
		now: time.Now, pollEvery: 100 * time.Millisecond}
	for _, u := range cfg.Upstreams {
		up, err := newUpstream(u, rt)
		if err != nil {
			return nil, fmt.Errorf("proxycache: %w", err)
		}
		c.upstreams[u.Prefix] = up
	}
	return c, nil
}

// Route implements registry.Mirror.
func (c *Cache) Route(r *http.Request, name string) (string, bool, error) {
	return c.names.route(name, r.URL.Query().Get("ns"))
}

// target returns the upstream and content repository of a local mirrored
// repository.
func (c *Cache) target(local string) (*upstream, name.Repository, *content.Repository, error) {
	prefix, path, ok := c.names.split(local)
	if !ok {
		return nil, name.Repository{}, nil, fmt.Errorf("proxycache: %s is not under a mirror prefix", local)
	}
	u := c.upstreams[prefix]
	ref, err := u.repo(path)
	if err != nil {
		return nil, name.Repository{}, nil, &registry.MirrorError{Code: registry.MirrorNameInvalid, Message: err.Error(), Err: err}
	}
	repo, err := c.content.Repository(local)
	if err != nil {
		return nil, name.Repository{}, nil, err
	}
	return u, ref, repo, nil
}

// Manifest implements registry.Mirror: a digest is fetched once; a tag is
// served from the store while younger than the TTL, then checked with a
// HEAD, and fetched again only when the upstream digest changed. An
// unreachable upstream leaves the cached tag in service.
func (c *Cache) Manifest(ctx context.Context, local string, ref registry.Reference) (digest.Digest, error) {
	v, err, _ := c.manifests.Do(local+"@"+ref.String(), func() (any, error) {
		// Shared by every joined caller: one client going away must not
		// fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), manifestTimeout)
		defer cancel()
		return c.manifest(ctx, local, ref)
	})
	if err != nil {
		return "", err
	}
	return v.(digest.Digest), nil
}

func (c *Cache) manifest(ctx context.Context, local string, ref registry.Reference) (digest.Digest, error) {
	u, up, repo, err := c.target(local)
	if err != nil {
		return "", err
	}
	if ref.Tag == "" {
		_, err := repo.GetManifest(ctx, ref.Digest)
		if err == nil {
			c.metrics.hit(u.prefix, "manifest")
			return ref.Digest, nil
		}
		if !errors.Is(err, content.ErrManifestUnknown) {
			return "", err
		}
		return c.fetchManifest(ctx, u, up.Digest(ref.Digest.String()), repo, ref.Digest, "")
	}
	cached, err := repo.ResolveTag(ctx, ref.Tag)
	switch {
	case errors.Is(err, content.ErrManifestUnknown):
		return c.fetchManifest(ctx, u, up.Tag(ref.Tag), repo, "", ref.Tag)
	case err != nil:
		return "", err
	}
	if info, err := repo.TagCheckedAt(ctx, ref.Tag); err == nil && c.now().Sub(info.ModTime) < u.ttl {
		c.metrics.hit(u.prefix, "manifest")
		return cached, nil
	}
	return c.recheckTag(ctx, u, up, repo, ref.Tag, cached)
}

// recheckTag asks the upstream whether tag still points at cached.
func (c *Cache) recheckTag(ctx context.Context, u *upstream, up name.Repository, repo *content.Repository, tag string, cached digest.Digest) (digest.Digest, error) {
	desc, err := u.headManifest(ctx, up.Tag(tag))
	c.metrics.upstream(u.prefix, "manifest_head", err)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		c.logger.Warn("upstream unavailable; serving the cached tag", "mirror", u.prefix, "repository", up.RepositoryStr(), "tag", tag, "err", err)
		return cached, nil
	}
	if desc.Digest.String() == cached.String() {
		// Rewriting the tag records the check (its mtime is the check time).
		if err := repo.SetTag(ctx, tag, cached); err != nil {
			c.logger.Warn("recording the tag check failed; it is checked again next pull", "repository", repo.Name(), "tag", tag, "err", err)
		}
		c.metrics.hit(u.prefix, "manifest")
		return cached, nil
	}
	d, err := digest.Parse(desc.Digest.String())
	if err != nil {
		c.logger.Warn("upstream sent an invalid digest; serving the cached tag", "mirror", u.prefix, "digest", desc.Digest.String())
		return cached, nil
	}
	got, err := c.fetchManifest(ctx, u, up.Digest(d.String()), repo, d, tag)
	if err != nil {
		var me *registry.MirrorError
		if errors.As(err, &me) {
			c.logger.Warn("fetching the changed tag failed; serving the cached one", "mirror", u.prefix, "tag", tag, "err", err)
			return cached, nil
		}
		return "", err
	}
	return got, nil
}

// fetchManifest GETs a manifest upstream, checks it and stores it (under
// tag if set). want is the digest asked for, empty for a tag.
func (c *Cache) fetchManifest(ctx context.Context, u *upstream, ref name.Reference, repo *content.Repository, want digest.Digest, tag string) (digest.Digest, error) {
	what := "manifest " + ref.String()
	desc, err := u.getManifest(ctx, ref)
	c.metrics.upstream(u.prefix, "manifest_get", err)
	if err != nil {
		return "", upstreamFault(u.prefix, what, err, registry.MirrorManifestUnknown)
	}
	body := desc.Manifest
	if int64(len(body)) > c.maxSize {
		return "", &registry.MirrorError{Code: registry.MirrorUnavailable,
			Message: fmt.Sprintf("upstream %s is %d bytes, over the manifest size limit of %d", what, len(body), c.maxSize)}
	}
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
	}
	d := alg.FromBytes(body)
	if want != "" && d != want {
		return "", &registry.MirrorError{Code: registry.MirrorUnavailable,
			Message: fmt.Sprintf("upstream sent %s with digest %s; nothing was stored", what, d)}
	}
	pm, err := content.ParseManifest(string(desc.MediaType), body)
	if err != nil {
		return "", &registry.MirrorError{Code: registry.MirrorUnavailable, Err: err,
			Message: fmt.Sprintf("upstream sent an invalid %s; nothing was stored", what)}
	}
	if err := repo.PutCachedManifest(ctx, d, pm, body, tag); err != nil {
		return "", err
	}
	c.logger.Info("cached manifest from upstream", "mirror", u.prefix, "repository", repo.Name(), "digest", d.String(), "tag", tag)
	return d, nil
}
