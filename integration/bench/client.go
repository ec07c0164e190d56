package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// client speaks the OCI distribution API with plain net/http, so that every
// contender receives byte-for-byte the same requests.
type client struct {
	base string // http://127.0.0.1:PORT
	hc   *http.Client
}

func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // 127.0.0.1 only, whatever the environment says
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        128,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
			WriteBufferSize:     256 << 10,
			ReadBufferSize:      256 << 10,
		},
		// A redirect would mean the bytes did not flow through the
		// registry; the benchmark must notice, not follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// statusError is an unexpected answer, with the start of its body.
type statusError struct {
	method, url string
	code        int
	body        string
	retryAfter  time.Duration // Retry-After in seconds, if any
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.url, e.code, e.body)
}

func (c *client) resolve(loc string) (string, error) {
	base, err := url.Parse(c.base)
	if err != nil {
		return "", err
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("location %q: %w", loc, err)
	}
	return u.String(), nil
}

// do sends one request and checks the status; the caller closes the body
// of a returned response.
func (c *client) do(ctx context.Context, method, u string, body io.Reader, size int64, hdr http.Header, want ...int) (*http.Response, error) {
	if !strings.HasPrefix(u, "http") {
		u = c.base + u
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	se := &statusError{method: method, url: u, code: resp.StatusCode, body: strings.TrimSpace(string(msg))}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		se.retryAfter = time.Duration(secs) * time.Second
	}
	return nil, se
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

func octet() http.Header { return http.Header{"Content-Type": {"application/octet-stream"}} }

// startUpload opens an upload session and returns its absolute location.
func (c *client) startUpload(ctx context.Context, repo string) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", http.NoBody, 0, nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	drain(resp)
	return c.location(resp)
}

func (c *client) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL)
	}
	return c.resolve(loc)
}

// patch sends one chunk [start, start+n) and returns the next location.
func (c *client) patch(ctx context.Context, loc string, r io.Reader, start, n int64) (string, error) {
	h := octet()
	h.Set("Content-Range", fmt.Sprintf("%d-%d", start, start+n-1))
	resp, err := c.do(ctx, http.MethodPatch, loc, r, n, h, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	drain(resp)
	return c.location(resp)
}

func withDigest(loc, dgst string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("digest", dgst)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// commit closes an upload with PUT ?digest=, with an optional last chunk.
func (c *client) commit(ctx context.Context, loc, dgst string, r io.Reader, n int64) error {
	u, err := withDigest(loc, dgst)
	if err != nil {
		return err
	}
	if r == nil {
		r = http.NoBody
	}
	resp, err := c.do(ctx, http.MethodPut, u, r, n, octet(), http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != dgst {
		return fmt.Errorf("commit: registry stored %s, sent %s", got, dgst)
	}
	return nil
}

// pushChunked uploads b in PATCHes of chunk bytes and returns how long the
// final PUT ?digest= (no body) took.
func (c *client) pushChunked(ctx context.Context, repo string, b *blob, chunk int64) (time.Duration, error) {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return 0, err
	}
	for off := int64(0); off < b.Size; off += chunk {
		n := min(chunk, b.Size-off)
		if loc, err = c.patch(ctx, loc, b.Section(off, n), off, n); err != nil {
			return 0, fmt.Errorf("chunk at %d: %w", off, err)
		}
	}
	start := time.Now()
	if err := c.commit(ctx, loc, b.Digest, nil, 0); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// pushMonolithic uploads b as POST then one PUT ?digest= with the body.
func (c *client) pushMonolithic(ctx context.Context, repo string, b *blob) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	return c.commit(ctx, loc, b.Digest, b.Reader(), b.Size)
}

// pullBlob reads a blob and checks its length, and its digest when verify
// is set (the client's hashing competes with the server for the CPU, so
// large pulls only count bytes).
func (c *client) pullBlob(ctx context.Context, repo, dgst string, size int64, verify bool) error {
	resp, err := c.do(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+dgst, nil, 0, nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var w io.Writer = io.Discard
	h := sha256.New()
	if verify {
		w = h
	}
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(w, struct{ io.Reader }{resp.Body}, buf)
	if err != nil {
		return fmt.Errorf("GET blob %s: after %d bytes: %w", dgst, n, err)
	}
	if n != size {
		return fmt.Errorf("GET blob %s: %d bytes, want %d", dgst, n, size)
	}
	if verify {
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != dgst {
			return fmt.Errorf("GET blob %s: content hashes to %s", dgst, got)
		}
	}
	return nil
}

// mount links an existing blob of repository from into repo.
func (c *client) mount(ctx context.Context, repo, from, dgst string) error {
	q := url.Values{"mount": {dgst}, "from": {from}}
	resp, err := c.do(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?"+q.Encode(), http.NoBody, 0, nil, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// pushSmall uploads an in-memory blob monolithically (setup only).
func (c *client) pushBytes(ctx context.Context, repo string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	return dgst, c.commit(ctx, loc, dgst, bytes.NewReader(data), int64(len(data)))
}

func (c *client) putManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	resp, err := c.do(ctx, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body), int64(len(body)),
		http.Header{"Content-Type": {mediaType}}, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

func (c *client) getManifest(ctx context.Context, repo, ref, mediaType string) error {
	resp, err := c.do(ctx, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil, 0,
		http.Header{"Accept": {mediaType}}, http.StatusOK)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && n == 0 {
		err = fmt.Errorf("GET manifest %s:%s: empty body", repo, ref)
	}
	return err
}

// list reads every page of a tag list or catalog, following Link headers
// (at most maxPages), and returns how many entries it saw.
func (c *client) list(ctx context.Context, path, field string) (int, error) {
	const maxPages = 10000
	total := 0
	next := path
	for page := 0; next != ""; page++ {
		if page == maxPages {
			return total, fmt.Errorf("%s: more than %d pages", path, maxPages)
		}
		resp, err := c.do(ctx, http.MethodGet, next, nil, 0, nil, http.StatusOK)
		if err != nil {
			return total, err
		}
		var doc map[string]json.RawMessage
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			return total, fmt.Errorf("%s: %w", next, err)
		}
		var entries []string
		if raw, ok := doc[field]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &entries); err != nil {
				return total, fmt.Errorf("%s: %s: %w", next, field, err)
			}
		}
		total += len(entries)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			l, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(link), "<"), ">")
			if !ok {
				return total, fmt.Errorf("%s: bad Link %q", path, link)
			}
			if next, err = c.resolve(l); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// referrers returns how many descriptors the referrers index lists.
func (c *client) referrers(ctx context.Context, repo, dgst string) (int, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v2/"+repo+"/referrers/"+dgst, nil, 0, nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var idx struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&idx); err != nil {
		return 0, fmt.Errorf("referrers %s: %w", dgst, err)
	}
	return len(idx.Manifests), nil
}

func mib(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return strconv.FormatInt(n>>30, 10) + " GiB"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}
