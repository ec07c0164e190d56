// Package inmemory is a storage.Driver that keeps every object in process
// memory. It exists for tests and single-process trials: nothing survives a
// restart and memory grows with the data stored.
package inmemory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

const (
	driverName = "inmemory"
	// pageSize is the listing page when the caller passes limit <= 0; it
	// matches S3's so that callers see the same paging everywhere.
	pageSize = 1000
)

// store is the shared backing store. Several Driver values may point at one
// store, which is how tests model "another instance of the same driver".
type store struct {
	mu      sync.Mutex
	objects map[string]object
	uploads map[string]*upload
	// seq makes every write's ETag distinct without hashing the content.
	seq uint64
}

type object struct {
	data    []byte
	modTime time.Time
	etag    string
}

// upload keeps each Append's bytes as one part, so appending never copies
// what is already there.
type upload struct {
	key   string
	parts [][]byte
	// touched is the time of the last Append, for AbortStale.
	touched time.Time
}

// size is the number of bytes in the parts.
func (u *upload) size() int64 {
	var n int64
	for _, p := range u.parts {
		n += int64(len(p))
	}
	return n
}

// truncate cuts the parts to size bytes. Parts are never modified in
// place (they may be shared with a committed object), only resliced.
func (u *upload) truncate(size int64) {
	for i, p := range u.parts {
		if size <= int64(len(p)) {
			u.parts[i] = p[:size:size]
			u.parts = u.parts[:i+1]
			return
		}
		size -= int64(len(p))
	}
}

// Driver is a storage.Driver over a store in memory. It is safe for
// concurrent use.
type Driver struct {
	s *store
}

var _ storage.Driver = (*Driver)(nil)

// New returns a driver over a new, empty store.
func New() *Driver {
	return &Driver{s: &store{objects: map[string]object{}, uploads: map[string]*upload{}}}
}

// Clone returns another driver over the same store: objects and multipart
// uploads written through one are visible through the other, as they would
// be for two processes sharing a bucket.
func (d *Driver) Clone() *Driver { return &Driver{s: d.s} }

// Name implements storage.Driver.
func (d *Driver) Name() string { return driverName }

// Close implements storage.Driver. The store is left intact for clones.
func (d *Driver) Close() error { return nil }

func opErr(op, key string, err error) error {
	return &storage.OpError{Op: op, Driver: driverName, Key: key, Err: err}
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := storage.CheckKey(driverName, "stat", key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, opErr("stat", key, err)
	}
	d.s.mu.Lock()
	o, ok := d.s.objects[key]
	d.s.mu.Unlock()
	if !ok {
		return storage.Info{}, opErr("stat", key, storage.ErrNotFound)
	}
	return info(key, o), nil
}

func info(key string, o object) storage.Info {
	return storage.Info{Key: key, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag}
}

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckKey(driverName, "reader", key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr("reader", key, err)
	}
	if offset < 0 {
		return nil, opErr("reader", key, fmt.Errorf("%w: negative offset %d", storage.ErrInvalidRange, offset))
	}
	d.s.mu.Lock()
	o, ok := d.s.objects[key]
	d.s.mu.Unlock()
	if !ok {
		return nil, opErr("reader", key, storage.ErrNotFound)
	}
	size := int64(len(o.data))
	if offset > size {
		return nil, opErr("reader", key, fmt.Errorf("%w: offset %d past size %d", storage.ErrInvalidRange, offset, size))
	}
	end := size
	if length >= 0 && length < size-offset {
		end = offset + length
	}
	// Object data is never mutated after it is stored (writes replace the
	// slice), so the reader needs no lock.
	return io.NopCloser(storage.ContextReader(ctx, bytes.NewReader(o.data[offset:end]))), nil
}

// Put implements storage.Driver.
func (d *Driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	if err := storage.CheckKey(driverName, "put", key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, opErr("put", key, err)
	}
	if opts.CreateOnly {
		// Fail early without reading the body; the check is repeated
		// under the lock, which is what makes create-only atomic.
		d.s.mu.Lock()
		_, exists := d.s.objects[key]
		d.s.mu.Unlock()
		if exists {
			return storage.Info{}, opErr("put", key, storage.ErrExists)
		}
	}
	// opts.Size is not used to preallocate: it is the caller's claim,
	// not a bound.
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(storage.ContextReader(ctx, r)); err != nil {
		return storage.Info{}, opErr("put", key, err)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, exists := d.s.objects[key]; exists && opts.CreateOnly {
		return storage.Info{}, opErr("put", key, storage.ErrExists)
	}
	o := d.s.newObjectLocked(buf.Bytes())
	d.s.objects[key] = o
	return info(key, o), nil
}

func (s *store) newObjectLocked(data []byte) object {
	s.seq++
	return object{data: data, modTime: time.Now(), etag: strconv.FormatUint(s.seq, 16)}
}

// List implements storage.Driver. It sorts the matching keys on each call,
// which is fine for a test store.
func (d *Driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if err := ctx.Err(); err != nil {
		return storage.ListPage{}, opErr("list", prefix, err)
	}
	if limit <= 0 {
		limit = pageSize
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	var keys []string
	for k := range d.s.objects {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var page storage.ListPage
	if len(keys) > limit {
		keys, page.More = keys[:limit], true
	}
	page.Objects = make([]storage.Info, 0, len(keys))
	for _, k := range keys {
		page.Objects = append(page.Objects, info(k, d.s.objects[k]))
	}
	return page, nil
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(driverName, "delete", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opErr("delete", key, err)
	}
	d.s.mu.Lock()
	delete(d.s.objects, key)
	d.s.mu.Unlock()
	return nil
}

// DeleteBatch implements storage.Driver. Every key is checked before any is
// deleted, so an invalid key deletes nothing.
func (d *Driver) DeleteBatch(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := storage.CheckKey(driverName, "delete", k); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return opErr("delete", "", err)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	for _, k := range keys {
		delete(d.s.objects, k)
	}
	return nil
}

// handle is the serialised multipart state.
type handle struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// NewMultipart implements storage.Driver.
func (d *Driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	if err := storage.CheckKey(driverName, "multipart", key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr("multipart", key, err)
	}
	id := rand.Text()
	d.s.mu.Lock()
	d.s.uploads[id] = &upload{key: key, touched: time.Now()}
	d.s.mu.Unlock()
	return &multipart{s: d.s, h: handle{ID: id, Key: key}}, nil
}

// ResumeMultipart implements storage.Driver.
func (d *Driver) ResumeMultipart(ctx context.Context, raw []byte) (storage.Multipart, error) {
	var h handle
	if err := json.Unmarshal(raw, &h); err != nil || h.ID == "" || h.Size < 0 || !storage.ValidKey(h.Key) {
		return nil, opErr("resume", "", fmt.Errorf("%w: malformed handle", storage.ErrHandleExpired))
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr("resume", h.Key, err)
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	u, ok := d.s.uploads[h.ID]
	if !ok {
		return nil, opErr("resume", h.Key, storage.ErrNotFound)
	}
	if u.key != h.Key || u.size() < h.Size {
		return nil, opErr("resume", h.Key, fmt.Errorf("%w: handle does not match the upload", storage.ErrHandleExpired))
	}
	return &multipart{s: d.s, h: h}, nil
}

type multipart struct {
	s *store
	h handle
}

func (m *multipart) Size() int64 { return m.h.Size }

func (m *multipart) Handle() ([]byte, error) { return json.Marshal(m.h) }

// Append reads the whole part before touching the upload, so a failed
// Append leaves the upload as it was.
func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, opErr("append", m.h.Key, err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(storage.ContextReader(ctx, r)); err != nil {
		return 0, opErr("append", m.h.Key, err)
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	u, ok := m.s.uploads[m.h.ID]
	if !ok {
		return 0, opErr("append", m.h.Key, storage.ErrNotFound)
	}
	if u.size() < m.h.Size {
		return 0, opErr("append", m.h.Key, fmt.Errorf("%w: upload shorter than handle", storage.ErrHandleExpired))
	}
	// Cutting at our size drops bytes of an earlier failed writer of this
	// upload, the same as resuming from the handle does on other drivers.
	u.truncate(m.h.Size)
	if buf.Len() > 0 {
		u.parts = append(u.parts, buf.Bytes())
	}
	u.touched = time.Now()
	m.h.Size += int64(buf.Len())
	return int64(buf.Len()), nil
}

func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	if err := ctx.Err(); err != nil {
		return storage.Info{}, opErr("commit", m.h.Key, err)
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	u, ok := m.s.uploads[m.h.ID]
	if !ok {
		return storage.Info{}, opErr("commit", m.h.Key, storage.ErrNotFound)
	}
	if u.size() < m.h.Size {
		return storage.Info{}, opErr("commit", m.h.Key, fmt.Errorf("%w: upload shorter than handle", storage.ErrHandleExpired))
	}
	u.truncate(m.h.Size)
	data := make([]byte, 0, m.h.Size)
	for _, p := range u.parts {
		data = append(data, p...)
	}
	delete(m.s.uploads, m.h.ID)
	o := m.s.newObjectLocked(data)
	m.s.objects[m.h.Key] = o
	return info(m.h.Key, o), nil
}

func (m *multipart) Abort(ctx context.Context) error {
	m.s.mu.Lock()
	delete(m.s.uploads, m.h.ID)
	m.s.mu.Unlock()
	return nil
}

var _ storage.MultipartReaper = (*Driver)(nil)

// AbortStale implements storage.MultipartReaper.
func (d *Driver) AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	n := 0
	for id, u := range d.s.uploads {
		if u.touched.Before(cutoff) {
			n++
			if !dryRun {
				delete(d.s.uploads, id)
			}
		}
	}
	return n, nil
}
