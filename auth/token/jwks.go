package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// jwksFetchTimeout bounds one fetch of a JWKS URL, connection included.
const jwksFetchTimeout = 10 * time.Second

// remoteKeys is the key set of a JWKS URL. It is refreshed when its
// lifetime (Cache-Control max-age, clamped to [minRefresh, maxRefresh])
// runs out, and early when a token names a kid it does not know; but never
// more than once per minRefresh, and concurrent triggers share one fetch,
// so a flood of tokens with invented kids costs the IdP one request per
// minRefresh. A failed fetch keeps the last good set.
type remoteKeys struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	maxRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger

	group singleflight.Group

	mu          sync.Mutex
	set         *keySet // last good set; nil before the first success
	lastAttempt time.Time
	nextRefresh time.Time
}

func newRemoteKeys(cfg *Config, client *http.Client, now func() time.Time, log *slog.Logger) *remoteKeys {
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	// A redirect must not downgrade the fetch to plain http.
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return checkJWKSURL(req.URL.String())
	}
	return &remoteKeys{
		url: cfg.JWKSURL, client: &c, minRefresh: cfg.JWKSMinRefresh, maxRefresh: cfg.JWKSRefresh,
		now: now, log: log.With("jwks_url", cfg.JWKSURL),
	}
}

// current is the last good set (nil before the first successful fetch).
func (r *remoteKeys) current() *keySet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set
}

// lookup finds a key by kid or thumbprint (byThumb), fetching the set
// again when the key is unknown and the rate bound allows it.
func (r *remoteKeys) lookup(ctx context.Context, name string, byThumb bool) (trustedKey, bool) {
	find := func(s *keySet) (trustedKey, bool) {
		if s == nil {
			return trustedKey{}, false
		}
		if byThumb {
			return s.lookupThumb(name)
		}
		return s.lookupKID(name)
	}
	if k, ok := find(r.current()); ok {
		return k, true
	}
	if err := r.refresh(ctx, false); err != nil && !errors.Is(err, errRateLimited) {
		r.log.Warn("jwks refresh for an unknown key failed; keeping the last good key set", "err", err)
	}
	return find(r.current())
}

var errRateLimited = errors.New("jwks fetched less than jwks_min_refresh ago")

// refresh fetches the set once for all concurrent callers. Unless forced
// (the periodic refresh), it does nothing within minRefresh of the last
// attempt.
func (r *remoteKeys) refresh(ctx context.Context, forced bool) error {
	// The fetch is shared: one caller giving up must not fail the others.
	ctx = context.WithoutCancel(ctx)
	_, err, _ := r.group.Do("jwks", func() (any, error) {
		r.mu.Lock()
		now := r.now()
		if !forced && !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < r.minRefresh {
			r.mu.Unlock()
			return nil, errRateLimited
		}
		r.lastAttempt = now
		r.mu.Unlock()

		set, maxAge, err := r.fetch(ctx)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.nextRefresh = now.Add(r.minRefresh)
			return nil, err
		}
		r.set = set
		r.nextRefresh = now.Add(r.lifetime(maxAge))
		return nil, nil
	})
	return err
}

// lifetime clamps a max-age (negative: none given) to the configured bounds.
func (r *remoteKeys) lifetime(maxAge time.Duration) time.Duration {
	switch {
	case maxAge < 0:
		return r.maxRefresh
	case maxAge < r.minRefresh:
		return r.minRefresh
	case maxAge > r.maxRefresh:
		return r.maxRefresh
	}
	return maxAge
}

func (r *remoteKeys) fetch(ctx context.Context) (*keySet, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("fetch jwks: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("fetch jwks: %w", err)
	}
	if len(data) > maxJWKSSize {
		return nil, 0, fmt.Errorf("fetch jwks: response larger than %d bytes", maxJWKSSize)
	}
	set, skipped, err := parseJWKS(data)
	if err != nil {
		return nil, 0, err
	}
	if len(skipped) > 0 {
		r.log.Debug("jwks keys skipped", "skipped", strings.Join(skipped, "; "))
	}
	return set, maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge reads Cache-Control: max-age=N; no-store and no-cache count as
// 0 (refresh as often as allowed), and no directive as -1.
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n >= 0 {
				return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
			}
		}
	}
	return -1
}

// run refreshes the set whenever its lifetime ends, until ctx is done.
func (r *remoteKeys) run(ctx context.Context) {
	for {
		r.mu.Lock()
		wait := r.nextRefresh.Sub(r.now())
		r.mu.Unlock()
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.mu.Lock()
		early := r.now().Before(r.nextRefresh) // an unknown kid refreshed it meanwhile
		r.mu.Unlock()
		if early {
			continue
		}
		if err := r.refresh(ctx, true); err != nil {
			r.log.Warn("jwks refresh failed; keeping the last good key set", "err", err)
		}
	}
}
