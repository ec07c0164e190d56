package token

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer serves a key set that the test swaps, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	header  http.Header
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK, header: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, v := range s.header {
			w.Header()[k] = v
		}
		w.WriteHeader(s.status)
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func newRemoteVerifier(t *testing.T, url string, clk *clock) *Verifier {
	t.Helper()
	cfg := Config{Service: testService, Issuer: testIssuer, JWKSURL: url, JWKSMinRefresh: 30 * time.Second, JWKSRefresh: 10 * time.Minute}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil && !strings.Contains(err.Error(), "realm") {
		t.Fatal(err)
	}
	v, err := NewVerifier(context.Background(), cfg, VerifierOptions{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWKSURLRotation(t *testing.T) {
	oldKey, newKey := newECKey(t, "2026-01"), newRSAKey(t, "2026-02")
	srv := newJWKSServer(t, jwks(t, oldKey))
	clk := &clock{t: testNow}
	v := newRemoteVerifier(t, srv.URL, clk)
	ctx := context.Background()
	verify := func(k testKey) error {
		_, _, err := v.Verify(ctx, sign(t, k, goodClaims("alice"), nil))
		return err
	}
	if err := verify(oldKey); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}

	// The IdP publishes the new key and drops the old one.
	srv.set(http.StatusOK, jwks(t, newKey))
	clk.advance(time.Second)
	before := srv.fetches.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = verify(newKey)
		}()
	}
	wg.Wait()
	if n := srv.fetches.Load() - before; n != 0 {
		t.Fatalf("%d fetches within jwks_min_refresh of the last one, want 0", n)
	}
	if err := verify(newKey); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("new kid before the rate bound allows a refresh: %v", err)
	}

	clk.advance(30 * time.Second)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = verify(newKey)
		}()
	}
	wg.Wait()
	if n := srv.fetches.Load() - before; n != 1 {
		t.Fatalf("%d fetches for 20 concurrent unknown-kid tokens, want 1", n)
	}
	if err := verify(newKey); err != nil {
		t.Fatalf("new key after the refresh: %v", err)
	}
	if err := verify(oldKey); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("removed key still accepted: %v", err)
	}
}

func TestJWKSURLKeepsLastGoodSet(t *testing.T) {
	key := newECKey(t, "k1")
	srv := newJWKSServer(t, jwks(t, key))
	clk := &clock{t: testNow}
	v := newRemoteVerifier(t, srv.URL, clk)
	for _, tc := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"server error", http.StatusInternalServerError, []byte("oops")},
		{"not JSON", http.StatusOK, []byte("<html>")},
		{"no usable key", http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)},
		{"too large", http.StatusOK, bytes.Repeat([]byte(" "), maxJWKSSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.status, tc.body)
			clk.advance(time.Minute)
			if err := v.remote.refresh(context.Background(), true); err == nil {
				t.Fatal("refresh succeeded")
			}
			if _, _, err := v.Verify(context.Background(), sign(t, key, goodClaims("alice"), nil)); err != nil {
				t.Fatalf("last good key lost: %v", err)
			}
		})
	}
}

func TestJWKSURLUnreachableAtStart(t *testing.T) {
	key := newECKey(t, "k1")
	srv := newJWKSServer(t, nil)
	srv.set(http.StatusServiceUnavailable, nil)
	clk := &clock{t: testNow}
	v := newRemoteVerifier(t, srv.URL, clk)
	tok := sign(t, key, goodClaims("alice"), nil)
	if _, _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("verified without keys: %v", err)
	}
	srv.set(http.StatusOK, jwks(t, key))
	clk.advance(30 * time.Second)
	if _, _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("not fetched once the IdP is up: %v", err)
	}
}

func TestJWKSURLRefusesDowngradeRedirect(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://keys.example.com/jwks", http.StatusFound))
	t.Cleanup(srv.Close)
	clk := &clock{t: testNow}
	v := newRemoteVerifier(t, srv.URL, clk)
	err := v.remote.refresh(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("redirect to plain http followed: %v", err)
	}
}

func TestJWKSLifetime(t *testing.T) {
	r := &remoteKeys{minRefresh: 30 * time.Second, maxRefresh: 10 * time.Minute}
	for _, tc := range []struct {
		cacheControl string
		want         time.Duration
	}{
		{"", 10 * time.Minute},
		{"public, max-age=120", 2 * time.Minute},
		{"max-age=5", 30 * time.Second},
		{"max-age=86400", 10 * time.Minute},
		{"no-store", 30 * time.Second},
		{"no-cache, max-age=300", 30 * time.Second},
		{"max-age=abc", 10 * time.Minute},
		{"max-age=-1", 10 * time.Minute},
		{`max-age="60"`, time.Minute},
	} {
		if got := r.lifetime(maxAge(tc.cacheControl)); got != tc.want {
			t.Errorf("Cache-Control %q: lifetime %s, want %s", tc.cacheControl, got, tc.want)
		}
	}
}

func TestJWKSRunHonoursMaxAge(t *testing.T) {
	key := newECKey(t, "k1")
	srv := newJWKSServer(t, jwks(t, key))
	srv.mu.Lock()
	srv.header.Set("Cache-Control", "max-age=60")
	srv.mu.Unlock()
	clk := &clock{t: testNow}
	v := newRemoteVerifier(t, srv.URL, clk)
	v.remote.mu.Lock()
	next := v.remote.nextRefresh
	v.remote.mu.Unlock()
	if want := testNow.Add(time.Minute); !next.Equal(want) {
		t.Fatalf("next refresh %s, want %s", next, want)
	}
	// Once the lifetime has run out, Run fetches again.
	clk.advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Run(ctx)
	}()
	deadline := time.After(10 * time.Second)
	for srv.fetches.Load() < 2 {
		select {
		case <-deadline:
			t.Fatal("Run did not refresh the expired key set")
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	<-done
}
