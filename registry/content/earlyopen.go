package content

import (
	"context"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
)

// maxDataKeys bounds the data keys a process remembers (about 200 bytes
// each): the blobs pulled most recently, as a pull-heavy registry sees
// them, at well under a MiB.
const maxDataKeys = 4096

// dataKeys remembers which data object held a digest's bytes when this
// process last served it. A data object is written once, by one upload,
// under a key no other upload uses, and holds exactly the digest's bytes
// for as long as it exists; so a remembered key can be gone or stale, but
// it never names other bytes. That is the only fact kept: whether the
// repository serves the blob is read every time.
type dataKeys struct {
	mu   sync.Mutex
	keys map[digest.Digest]DataRef
}

func newDataKeys() *dataKeys { return &dataKeys{keys: map[digest.Digest]DataRef{}} }

func (c *dataKeys) get(d digest.Digest) (DataRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[d]
	return k, ok
}

func (c *dataKeys) put(d digest.Digest, k DataRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[d]; !ok && len(c.keys) >= maxDataKeys {
		for victim := range c.keys { // map order: a random eviction
			delete(c.keys, victim)
			break
		}
	}
	c.keys[d] = k
}

func (c *dataKeys) forget(d digest.Digest, k DataRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys[d] == k {
		delete(c.keys, d)
	}
}

// OpenServedBlob is ServeBlob followed by Open of the whole blob, for a
// GET. When this process served d before, it opens the remembered data
// object while it reads the link, so a small pull waits for one store
// round trip instead of two; when it also remembers the link, under the
// repository's current stamp (linkstamps.go), it reads no link at all.
// The answer is the one ServeBlob then Open would give: the early reader
// is used only once the link is known to name that same data object and
// the pin has succeeded; otherwise it is closed unread and the blob is
// opened as before. Nothing of the blob is returned before the pin, so a
// pull still never serves a blob GC is deleting, and an unknown digest
// still leaves no pin.
func (r *Repository) OpenServedBlob(ctx context.Context, d digest.Digest) (Blob, io.ReadCloser, error) {
	if b, rc, ok := r.openRemembered(ctx, d); ok {
		return b, rc, nil
	}
	// The stamp is read before the link: a deletion that replaces it
	// later makes what is remembered here be read again.
	stamp, stampErr := r.s.links.stamp(ctx, r.name)
	early := r.s.openEarly(ctx, d)
	b, err := r.ServeBlob(ctx, d)
	if err != nil {
		early.discard()
		return Blob{}, nil, err
	}
	if rc, ok := early.take(b.Data); ok {
		r.remember(ctx, b, stamp, stampErr)
		return b, rc, nil
	}
	rc, err := r.s.Open(ctx, b, 0, -1)
	if err != nil {
		return Blob{}, nil, err
	}
	if early == nil || early.key != b.Data {
		// Not when the early read of this very key just failed: Open
		// then served newer data through the record, and the link's key
		// would only be tried and forgotten again on the next pull.
		r.s.dataKeys.put(d, b.Data)
		r.remember(ctx, b, stamp, stampErr)
	}
	return b, rc, nil
}

// remember keeps the link just served under stamp, the repository's stamp
// read before the link. A repository with no stamp yet gets one (it was
// just served from, so this is no probe of an unknown name), and the next
// pull that finds it remembers.
func (r *Repository) remember(ctx context.Context, b Blob, stamp string, stampErr error) {
	switch {
	case stampErr != nil:
	case isLive(stamp):
		r.s.links.put(r.name, b, stamp)
	case stamp == "":
		if err := r.s.links.ensureStamp(ctx, r.name); err != nil {
			r.s.logger.Debug("creating a link stamp failed", "repo", r.name, "err", err)
		}
	}
}

// openRemembered serves d from a remembered link: it opens the data and,
// meanwhile, pins and reads the repository's stamp (two lock-store calls
// in parallel, no store read). ok is false, with nothing left open, when
// nothing is remembered, the stamp changed, the pin did not succeed or the
// data did not open; the caller then takes the path that reads the link.
func (r *Repository) openRemembered(ctx context.Context, d digest.Digest) (Blob, io.ReadCloser, bool) {
	e, ok := r.s.links.get(r.name, d)
	if !ok {
		return Blob{}, nil, false
	}
	early := r.s.openData(ctx, d, e.blob.Data)
	stamp := make(chan string, 1)
	go func() {
		v, err := r.s.links.stamp(ctx, r.name)
		if err != nil {
			v = ""
		}
		stamp <- v
	}()
	pinErr := r.PinBlob(ctx, d, false)
	if current := <-stamp; current != e.stamp || pinErr != nil {
		early.discard()
		if current != e.stamp {
			r.s.links.forget(r.name, d)
		}
		return Blob{}, nil, false
	}
	rc, ok := early.take(e.blob.Data)
	if !ok {
		r.s.links.forget(r.name, d)
		return Blob{}, nil, false
	}
	return e.blob, rc, true
}

// earlyOpen is a data object being opened before the link says it is the
// right one; nil when this process remembers no data object for the
// digest.
type earlyOpen struct {
	s      *Store
	d      digest.Digest
	key    DataRef
	cancel context.CancelFunc
	result chan opened
}

type opened struct {
	rc  io.ReadCloser
	err error
}

func (s *Store) openEarly(ctx context.Context, d digest.Digest) *earlyOpen {
	key, ok := s.dataKeys.get(d)
	if !ok {
		return nil
	}
	return s.openData(ctx, d, key)
}

// openData starts opening data object key of d.
func (s *Store) openData(ctx context.Context, d digest.Digest, key DataRef) *earlyOpen {
	ctx, cancel := context.WithCancel(ctx)
	e := &earlyOpen{s: s, d: d, key: key, cancel: cancel, result: make(chan opened, 1)}
	go func() {
		rc, err := s.driver.Reader(ctx, string(key), 0, -1)
		e.result <- opened{rc: rc, err: err}
	}()
	return e
}

// take returns the early reader if it opened the data object key (the
// one the link names); otherwise it discards it.
func (e *earlyOpen) take(key DataRef) (io.ReadCloser, bool) {
	if e == nil {
		return nil, false
	}
	if key != e.key {
		e.discard()
		return nil, false
	}
	o := <-e.result
	if o.err != nil {
		// Gone (GC, or a re-push under a new key) or failing: Open
		// decides, as without the early reader.
		e.cancel()
		e.s.dataKeys.forget(e.d, e.key)
		return nil, false
	}
	return cancelOnClose{ReadCloser: o.rc, cancel: e.cancel}, true
}

// discard cancels the early read and closes what it opened. It waits for
// the open to return (at once, cancelled), so no goroutine outlives the
// request.
func (e *earlyOpen) discard() {
	if e == nil {
		return
	}
	e.cancel()
	if o := <-e.result; o.rc != nil {
		o.rc.Close()
	}
}

// cancelOnClose ends the early reader's context with the reader.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
