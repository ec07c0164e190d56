package proxycache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/locking"
	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/content"
)

// leaseTTL is how long a blob-fetch lease lives without renewal; the
// holder renews it every third of that while it streams.
const leaseTTL = 30 * time.Second

// blobLeaseKey is the lease that makes one replica fetch a blob.
func blobLeaseKey(d digest.Digest) string { return "proxy-blob:" + d.String() }

// FetchBlob implements registry.Mirror. A HEAD is answered from an upstream
// HEAD and stores nothing. A GET takes the blob's lease, so that one
// replica fetches it while concurrent pulls (on any replica) wait for the
// stored copy; a waiter that outlasts proxy.lease_wait gets 503 with
// Retry-After. A ranged GET stores the whole blob first and leaves the
// range to the registry.
func (c *Cache) FetchBlob(w http.ResponseWriter, r *http.Request, local string, d digest.Digest) (bool, error) {
	ctx := r.Context()
	u, up, repo, err := c.target(local)
	if err != nil {
		return false, err
	}
	ref := up.Digest(d.String())
	if r.Method == http.MethodHead {
		return c.headBlob(ctx, w, u, ref, d)
	}
	deadline := c.now().Add(c.leaseWait)
	for {
		if c.linkIfStored(ctx, repo, d) {
			c.metrics.hit(u.prefix, "blob")
			return false, nil
		}
		lease, err := c.leases.Acquire(ctx, blobLeaseKey(d), leaseTTL)
		if err == nil {
			return c.fetchHolding(w, r, u, ref, repo, d, lease)
		}
		if !errors.Is(err, locking.ErrHeld) {
			return false, err
		}
		if c.now().After(deadline) {
			return false, &registry.MirrorError{Code: registry.MirrorUnavailable, RetryAfter: defaultRetryAfter,
				Message: fmt.Sprintf("blob %s is being fetched from upstream by another request; retry shortly", d)}
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(c.pollEvery):
		}
	}
}

// linkIfStored links d into repo if the store has it (another replica's
// fetch, or another repository of the mirror).
func (c *Cache) linkIfStored(ctx context.Context, repo *content.Repository, d digest.Digest) bool {
	if _, err := c.content.Stat(ctx, d); err != nil {
		return false
	}
	return repo.Link(ctx, d) == nil
}

func (c *Cache) headBlob(ctx context.Context, w http.ResponseWriter, u *upstream, ref name.Digest, d digest.Digest) (bool, error) {
	l, err := u.layer(ctx, ref)
	if err != nil {
		return false, upstreamFault(u.prefix, "blob "+d.String(), err, registry.MirrorBlobUnknown)
	}
	size, err := l.Size()
	if err != nil {
		return false, upstreamFault(u.prefix, "blob "+d.String(), err, registry.MirrorBlobUnknown)
	}
	writeBlobHeaders(w, d, size)
	w.WriteHeader(http.StatusOK)
	return true, nil
}

func writeBlobHeaders(w http.ResponseWriter, d digest.Digest, size int64) {
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
}

// fetchHolding fetches d while holding its lease, then releases it.
func (c *Cache) fetchHolding(w http.ResponseWriter, r *http.Request, u *upstream, ref name.Digest, repo *content.Repository, d digest.Digest, lease locking.Lease) (bool, error) {
	// The fetch outlives a client that goes away, so that the blob is
	// stored for the pulls waiting on the lease.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.fetchMax)
	defer cancel()
	stop := c.renew(ctx, lease)
	defer func() {
		stop()
		if err := c.leases.Release(ctx, lease); err != nil && !errors.Is(err, locking.ErrLost) {
			c.logger.Warn("releasing the blob-fetch lease failed; it expires", "digest", d.String(), "err", err)
		}
	}()
	// The previous holder may have stored it just before we took over.
	if c.linkIfStored(ctx, repo, d) {
		return false, nil
	}
	client := io.Writer(w)
	ranged := r.Header.Get("Range") != ""
	if ranged {
		client = io.Discard
	}
	started, err := c.streamBlob(ctx, w, client, u, ref, repo, d)
	if err != nil && started {
		// The status and part of the body are out; only cutting the
		// connection tells the client the body is not the blob.
		c.logger.Error("mirror blob fetch failed mid-stream; connection aborted, nothing stored", "mirror", u.prefix, "digest", d.String(), "err", err)
		panic(http.ErrAbortHandler)
	}
	return started && !ranged, err
}

// renew keeps the lease while the fetch runs; losing it only means another
// replica may fetch too (CommitBlob keeps one copy), so failures are logged.
func (c *Cache) renew(ctx context.Context, l locking.Lease) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				nl, err := c.leases.Renew(ctx, l, leaseTTL)
				if err != nil {
					c.logger.Warn("renewing the blob-fetch lease failed", "key", l.Key, "err", err)
					return
				}
				l = nl
			}
		}
	}()
	return func() { cancel(); <-done }
}

// streamBlob GETs d upstream and copies it to the client and into a new
// data object at once, hashing as it goes. The last chunk is held back
// until the digest checks and the blob is committed, so a client never
// receives a complete body that is not the blob. started reports whether
// the response status was written.
func (c *Cache) streamBlob(ctx context.Context, w http.ResponseWriter, client io.Writer, u *upstream, ref name.Digest, repo *content.Repository, d digest.Digest) (started bool, err error) {
	what := "blob " + d.String()
	l, err := u.layer(ctx, ref)
	if err != nil {
		return false, upstreamFault(u.prefix, what, err, registry.MirrorBlobUnknown)
	}
	size, err := l.Size()
	if err != nil {
		return false, upstreamFault(u.prefix, what, err, registry.MirrorBlobUnknown)
	}
	body, err := l.Compressed()
	c.metrics.upstream(u.prefix, "blob_get", err)
	if err != nil {
		return false, upstreamFault(u.prefix, what, err, registry.MirrorBlobUnknown)
	}
	defer body.Close()
	if client != io.Discard {
		writeBlobHeaders(w, d, size)
		w.WriteHeader(http.StatusOK)
		started = true
	}
	id := newDataID()
	pr, pw := io.Pipe()
	stored := make(chan error, 1)
	go func() {
		_, err := c.content.PutData(ctx, id, pr, size)
		pr.CloseWithError(err)
		stored <- err
	}()
	hold := &holdback{w: client}
	h := d.Algorithm().Hash()
	n, err := copyTee(io.MultiWriter(h, pw), hold, body)
	if err == nil {
		err = checkBlob(d, size, n, h)
	}
	if err != nil {
		pw.CloseWithError(err)
		<-stored
		c.content.DeleteDataQuietly(ctx, id)
		return started, &registry.MirrorError{Code: registry.MirrorUnavailable, Err: err, RetryAfter: defaultRetryAfter,
			Message: fmt.Sprintf("fetching %s from the upstream of mirror %s failed; nothing was stored", what, u.prefix)}
	}
	pw.Close()
	if err := <-stored; err != nil {
		c.content.DeleteDataQuietly(ctx, id)
		return started, fmt.Errorf("storing %s: %w", what, err)
	}
	if err := repo.CommitBlob(ctx, d, id, size); err != nil {
		var notWritten *content.RecordNotWrittenError
		if errors.As(err, &notWritten) {
			c.content.DeleteDataQuietly(ctx, id)
		}
		return started, fmt.Errorf("committing %s: %w", what, err)
	}
	c.logger.Info("cached blob from upstream", "mirror", u.prefix, "repository", repo.Name(), "digest", d.String(), "size", size)
	hold.flush()
	return started, nil
}

// checkBlob verifies what was read against the digest and size asked for.
func checkBlob(d digest.Digest, size, n int64, h hash.Hash) error {
	if n != size {
		return fmt.Errorf("upstream sent %d bytes of a %d-byte blob", n, size)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return fmt.Errorf("upstream sent content with digest %s for %s", got, d)
	}
	return nil
}

// copyBufSize is the step of an upstream blob copy.
const copyBufSize = 256 << 10

// copyTee copies src into store (which must take everything) and into
// client (whose failures, a client gone away, are ignored).
func copyTee(store io.Writer, client *holdback, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := store.Write(buf[:k]); err != nil {
				return n, fmt.Errorf("writing to the store: %w", err)
			}
			client.write(buf[:k])
			n += int64(k)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("reading from upstream: %w", rerr)
		}
	}
}

// holdback passes bytes on one chunk late: the newest chunk waits until
// flush, which is called only for a verified, stored blob.
type holdback struct {
	w       io.Writer
	pending []byte
	failed  bool
}

func (h *holdback) write(p []byte) {
	h.send()
	h.pending = append(h.pending[:0], p...)
}

func (h *holdback) send() {
	if len(h.pending) == 0 || h.failed {
		return
	}
	if _, err := h.w.Write(h.pending); err != nil {
		h.failed = true // the client went away; the store copy continues
	}
	h.pending = h.pending[:0]
}

func (h *holdback) flush() { h.send() }

// newDataID names a fetched blob's data object as an upload's is named, so
// that GC's orphan sweep treats an abandoned one alike.
func newDataID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
