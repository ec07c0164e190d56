package instrument

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratus-registry/stratus/storage"
)

// driver instruments the methods every storage.Driver has.
type driver struct {
	next    storage.Driver
	m       *Metrics
	name    string
	read    prometheus.Counter
	written prometheus.Counter
}

func (d *driver) Name() string { return d.name }

func (d *driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	start := time.Now()
	info, err := d.next.Stat(ctx, key)
	d.m.observe(d.name, OpStat, start, err)
	return info, err
}

func (d *driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := d.next.Reader(ctx, key, offset, length)
	if err != nil {
		d.m.observe(d.name, OpRead, start, err)
		return nil, err
	}
	return &reader{rc: rc, d: d, start: start}, nil
}

func (d *driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	start := time.Now()
	info, err := d.next.Put(ctx, key, r, opts)
	d.m.observe(d.name, OpPut, start, err)
	if err == nil {
		d.written.Add(float64(info.Size))
	}
	return info, err
}

func (d *driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	start := time.Now()
	page, err := d.next.List(ctx, prefix, startAfter, limit)
	d.m.observe(d.name, OpList, start, err)
	return page, err
}

func (d *driver) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := d.next.Delete(ctx, key)
	d.m.observe(d.name, OpDelete, start, err)
	return err
}

func (d *driver) DeleteBatch(ctx context.Context, keys []string) error {
	start := time.Now()
	err := d.next.DeleteBatch(ctx, keys)
	d.m.observe(d.name, OpDeleteBatch, start, err)
	return err
}

func (d *driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	start := time.Now()
	mp, err := d.next.NewMultipart(ctx, key)
	d.m.observe(d.name, OpNewMultipart, start, err)
	if err != nil {
		return nil, err
	}
	return &multipart{next: mp, d: d}, nil
}

func (d *driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	start := time.Now()
	mp, err := d.next.ResumeMultipart(ctx, handle)
	d.m.observe(d.name, OpResumeMultipart, start, err)
	if err != nil {
		return nil, err
	}
	return &multipart{next: mp, d: d}, nil
}

func (d *driver) Close() error { return d.next.Close() }

// Unwrap returns the instrumented driver.
func (d *driver) Unwrap() storage.Driver { return d.next }

// reader counts bytes as they are read and records the read's latency and
// outcome once, at Close: a stream is one operation however long it runs.
type reader struct {
	rc    io.ReadCloser
	d     *driver
	start time.Time
	once  sync.Once
	// err is the first read error other than io.EOF. Read and Close are
	// not called concurrently (io.ReadCloser's contract), so no lock.
	err error
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.d.read.Add(float64(n))
	}
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *reader) Close() error {
	err := r.rc.Close()
	r.once.Do(func() { r.d.m.observe(r.d.name, OpRead, r.start, errors.Join(r.err, err)) })
	return err
}

// multipart instruments a resumable write.
type multipart struct {
	next storage.Multipart
	d    *driver
}

func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	start := time.Now()
	n, err := m.next.Append(ctx, r)
	m.d.m.observe(m.d.name, OpAppend, start, err)
	if err == nil {
		m.d.written.Add(float64(n))
	}
	return n, err
}

func (m *multipart) Size() int64             { return m.next.Size() }
func (m *multipart) Handle() ([]byte, error) { return m.next.Handle() }

func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	start := time.Now()
	info, err := m.next.Commit(ctx)
	m.d.m.observe(m.d.name, OpCommit, start, err)
	return info, err
}

func (m *multipart) Abort(ctx context.Context) error {
	start := time.Now()
	err := m.next.Abort(ctx)
	m.d.m.observe(m.d.name, OpAbort, start, err)
	return err
}

// signedURL and abortStale time the optional capabilities; driverwrap
// exposes them only when the wrapped driver has them.

func (d *driver) signedURL(ctx context.Context, s storage.URLSigner, key string, ttl time.Duration) (string, error) {
	start := time.Now()
	u, err := s.SignedURL(ctx, key, ttl)
	d.m.observe(d.name, OpSignedURL, start, err)
	return u, err
}

func (d *driver) abortStale(ctx context.Context, r storage.MultipartReaper, cutoff time.Time, dryRun bool) (int, error) {
	start := time.Now()
	n, err := r.AbortStale(ctx, cutoff, dryRun)
	d.m.observe(d.name, OpAbortStale, start, err)
	return n, err
}
