package filesystem

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

// handle is the serialised multipart state: the data file under _uploads,
// the key it becomes, and how many of its bytes were accepted.
type handle struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// validID accepts what NewMultipart generates (rand.Text: base32), so a
// handle can never name a file outside _uploads.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

func (d *Driver) uploadPath(id string) string { return filepath.Join(d.root, uploadsDir, id) }

// NewMultipart implements storage.Driver.
func (d *Driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	if err := checkKey("multipart", key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr("multipart", key, err)
	}
	id := rand.Text()
	f, err := os.OpenFile(d.uploadPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, opErr("multipart", key, err)
	}
	if err := f.Close(); err != nil {
		return nil, opErr("multipart", key, err)
	}
	// The handle may be saved and resumed after a crash: make the name
	// durable.
	if err := syncDir(filepath.Join(d.root, uploadsDir)); err != nil {
		return nil, opErr("multipart", key, err)
	}
	return &multipart{d: d, h: handle{ID: id, Key: key}}, nil
}

// ResumeMultipart implements storage.Driver. It cuts the data file back to
// the handle's size, which drops the bytes of any Append that failed after
// the handle was saved.
func (d *Driver) ResumeMultipart(ctx context.Context, raw []byte) (storage.Multipart, error) {
	var h handle
	if err := json.Unmarshal(raw, &h); err != nil || !validID(h.ID) || h.Size < 0 || checkKey("resume", h.Key) != nil {
		return nil, opErr("resume", "", fmt.Errorf("%w: malformed handle", storage.ErrHandleExpired))
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr("resume", h.Key, err)
	}
	f, err := os.OpenFile(d.uploadPath(h.ID), os.O_WRONLY, 0)
	if err != nil {
		return nil, opErr("resume", h.Key, translate(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, opErr("resume", h.Key, err)
	}
	if fi.Size() < h.Size {
		return nil, opErr("resume", h.Key, fmt.Errorf("%w: upload has %d bytes, handle says %d", storage.ErrHandleExpired, fi.Size(), h.Size))
	}
	if fi.Size() > h.Size {
		if err := f.Truncate(h.Size); err != nil {
			return nil, opErr("resume", h.Key, err)
		}
		if err := f.Sync(); err != nil {
			return nil, opErr("resume", h.Key, err)
		}
	}
	return &multipart{d: d, h: h}, nil
}

type multipart struct {
	d *Driver
	h handle
}

func (m *multipart) Size() int64 { return m.h.Size }

func (m *multipart) Handle() ([]byte, error) { return json.Marshal(m.h) }

// Append writes at the accepted size and fsyncs before counting the bytes,
// so a handle saved afterwards never refers to bytes a crash could lose.
func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, opErr("append", m.h.Key, err)
	}
	f, err := os.OpenFile(m.d.uploadPath(m.h.ID), os.O_WRONLY, 0)
	if err != nil {
		return 0, opErr("append", m.h.Key, translate(err))
	}
	defer f.Close()
	if _, err := f.Seek(m.h.Size, io.SeekStart); err != nil {
		return 0, opErr("append", m.h.Key, err)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, storage.ContextReader(ctx, r), make([]byte, copyBuffer))
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// Resume would drop the partial bytes anyway; dropping them now
		// keeps the file from holding them meanwhile. Best effort.
		_ = f.Truncate(m.h.Size)
		return 0, opErr("append", m.h.Key, err)
	}
	m.h.Size += n
	return n, nil
}

// Commit renames the data file onto the key: atomic, and O(1) in size.
func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	if err := ctx.Err(); err != nil {
		return storage.Info{}, opErr("commit", m.h.Key, err)
	}
	src := m.d.uploadPath(m.h.ID)
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		return storage.Info{}, opErr("commit", m.h.Key, translate(err))
	}
	fi, err := finishFile(f, f.Truncate(m.h.Size))
	if err != nil {
		return storage.Info{}, opErr("commit", m.h.Key, err)
	}
	if err := m.d.place(m.d.path(m.h.Key), func() error { return os.Rename(src, m.d.path(m.h.Key)) }); err != nil {
		if _, serr := os.Stat(src); errors.Is(serr, fs.ErrNotExist) {
			err = fmt.Errorf("%w: upload gone during commit: %w", storage.ErrNotFound, err)
		}
		return storage.Info{}, opErr("commit", m.h.Key, err)
	}
	return infoOf(m.h.Key, fi), nil
}

// Abort removes the data file. Aborting twice is not an error.
func (m *multipart) Abort(ctx context.Context) error {
	if err := os.Remove(m.d.uploadPath(m.h.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return opErr("abort", m.h.Key, err)
	}
	return nil
}

var _ storage.MultipartReaper = (*Driver)(nil)

// AbortStale implements storage.MultipartReaper: every Append writes the
// data file, so its modification time is the write's last activity.
func (d *Driver) AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	dir := filepath.Join(d.root, uploadsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, opErr("abort-stale", uploadsDir, translate(err))
	}
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) || !validID(e.Name()) {
			continue
		}
		n++
		if dryRun {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, opErr("abort-stale", uploadsDir+"/"+e.Name(), err)
		}
	}
	return n, nil
}
