package proxycache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/stratus-registry/stratus/registry"
)

// upstream is the client of one mirrored registry.
type upstream struct {
	prefix string
	ttl    time.Duration
	reg    name.Registry
	puller *remote.Puller
}

func newUpstream(u Upstream, rt http.RoundTripper) (*upstream, error) {
	parsed, err := url.Parse(u.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.Prefix, err)
	}
	var opts []name.Option
	if parsed.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(parsed.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.Prefix, err)
	}
	auth := authn.Anonymous
	if u.Username != "" {
		pw, err := u.password()
		if err != nil {
			return nil, err
		}
		auth = authn.FromConfig(authn.AuthConfig{Username: u.Username, Password: pw})
	}
	// Few, short retries: with the upstream down a pull waits for them
	// before it is served from the cache.
	p, err := remote.NewPuller(remote.WithAuth(auth), remote.WithTransport(rt), remote.WithUserAgent("stratus-proxycache"),
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}))
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u.Prefix, err)
	}
	return &upstream{prefix: u.Prefix, ttl: u.TTL, reg: reg, puller: p}, nil
}

func (u *upstream) repo(path string) (name.Repository, error) {
	r, err := name.NewRepository(u.reg.Name() + "/" + path)
	if err != nil {
		return name.Repository{}, fmt.Errorf("upstream repository %s: %w", path, err)
	}
	// The parsed name loses the registry's options (name.Insecure).
	r.Registry = u.reg
	return r, nil
}

// headManifest asks the upstream what ref points at, with a HEAD (which
// Docker Hub does not count against pull limits).
func (u *upstream) headManifest(ctx context.Context, ref name.Reference) (*v1.Descriptor, error) {
	return u.puller.Head(ctx, ref)
}

func (u *upstream) getManifest(ctx context.Context, ref name.Reference) (*remote.Descriptor, error) {
	return u.puller.Get(ctx, ref)
}

func (u *upstream) layer(ctx context.Context, d name.Digest) (v1.Layer, error) {
	return u.puller.Layer(ctx, d)
}

// upstreamFault classifies an upstream failure for the client when nothing
// cached can answer instead. what names the object ("manifest x").
func upstreamFault(prefix, what string, err error, notFoundCode string) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
			// Docker Hub answers 401 for repositories that do not exist.
			return &registry.MirrorError{Code: notFoundCode, Err: err,
				Message: fmt.Sprintf("%s is not known upstream of mirror %s (upstream answered %d)", what, prefix, te.StatusCode)}
		case http.StatusTooManyRequests:
			return &registry.MirrorError{Code: registry.MirrorTooManyRequests, Err: err, RetryAfter: defaultRetryAfter,
				Message: fmt.Sprintf("the upstream of mirror %s is rate-limiting and %s is not cached; retry later", prefix, what)}
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &registry.MirrorError{Code: registry.MirrorUnavailable, Err: err, RetryAfter: defaultRetryAfter,
		Message: fmt.Sprintf("the upstream of mirror %s is unreachable and %s is not cached; retry later", prefix, what)}
}

const defaultRetryAfter = 10 * time.Second
