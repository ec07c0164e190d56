// Package filesystem is a storage.Driver over a local (or shared, POSIX)
// directory. Object key "a/b/c" is the file <root>/a/b/c.
//
// Writes never show partial content: Put and multipart Commit write a file
// outside the key space, fsync it and rename it into place. Two top-level
// names are reserved for that: <root>/_tmp holds Put's temporary files and
// <root>/_uploads holds multipart data. Keys whose first segment is one of
// them are refused, and List never returns them.
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stratus-registry/stratus/storage"
)

const (
	driverName = "filesystem"
	tmpDir     = "_tmp"
	uploadsDir = "_uploads"
	// pageSize is the listing page for limit <= 0, the same as S3's.
	pageSize = 1000
	// copyBuffer bounds the memory one write uses.
	copyBuffer = 256 << 10
	// staleTmp is how long a temporary file may sit unmodified before New
	// removes it as left over from a crash.
	staleTmp = 24 * time.Hour
	// renameRetries bounds the retries when a concurrent Delete removes a
	// parent directory between our MkdirAll and rename.
	renameRetries = 10
)

// Config is the storage.filesystem section of the configuration.
type Config struct {
	Root string `yaml:"root"`
}

// Validate reports every problem with the section.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Root) == "" {
		errs = append(errs, errors.New("storage.filesystem.root: required"))
	} else if strings.ContainsRune(c.Root, 0) {
		errs = append(errs, errors.New("storage.filesystem.root: contains a NUL byte"))
	}
	return errors.Join(errs...)
}

// Driver is a storage.Driver over a directory. It keeps no state besides
// the root, so any number of instances (and processes) can share one root.
type Driver struct {
	root string
}

var _ storage.Driver = (*Driver)(nil)

// New validates cfg, creates the root and its internal directories, and
// removes temporary files left by a crash long ago.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("storage.filesystem.root: %w", err)
	}
	for _, dir := range []string{root, filepath.Join(root, tmpDir), filepath.Join(root, uploadsDir)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage.filesystem.root: %w", err)
		}
	}
	d := &Driver{root: root}
	d.sweepTmp(time.Now().Add(-staleTmp))
	return d, nil
}

// sweepTmp removes temporary files not modified since before. Best effort:
// another process may be sweeping too, or still writing a young file.
func (d *Driver) sweepTmp(before time.Time) {
	entries, err := os.ReadDir(filepath.Join(d.root, tmpDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(d.root, tmpDir, e.Name()))
		}
	}
}

// Name implements storage.Driver.
func (d *Driver) Name() string { return driverName }

// Close implements storage.Driver; the driver holds no resources.
func (d *Driver) Close() error { return nil }

// checkKey extends storage.CheckKey with the reserved top-level names.
func checkKey(op, key string) error {
	if err := storage.CheckKey(driverName, op, key); err != nil {
		return err
	}
	first, _, _ := strings.Cut(key, "/")
	if first == tmpDir || first == uploadsDir {
		return opErr(op, key, fmt.Errorf("%w: %q is reserved by the filesystem driver", storage.ErrInvalidKey, first))
	}
	return nil
}

// path maps a checked key to its file.
func (d *Driver) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// Stat implements storage.Driver.
func (d *Driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := checkKey("stat", key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, opErr("stat", key, err)
	}
	fi, err := os.Stat(d.path(key))
	if err != nil {
		return storage.Info{}, opErr("stat", key, translate(err))
	}
	if !fi.Mode().IsRegular() {
		// A directory is only a prefix of other keys, not an object.
		return storage.Info{}, opErr("stat", key, storage.ErrNotFound)
	}
	return infoOf(key, fi), nil
}

// infoOf builds an Info. The ETag combines size, nanosecond mtime (which
// every write sets from the wall clock) and inode (every write is a new
// file), so it changes with each write without hashing the content.
func infoOf(key string, fi fs.FileInfo) storage.Info {
	return storage.Info{
		Key:     key,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    fmt.Sprintf("%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), inode(fi)),
	}
}

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkKey("reader", key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr("reader", key, err)
	}
	if offset < 0 {
		return nil, opErr("reader", key, fmt.Errorf("%w: negative offset %d", storage.ErrInvalidRange, offset))
	}
	f, err := os.Open(d.path(key))
	if err != nil {
		return nil, opErr("reader", key, translate(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, opErr("reader", key, translate(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, opErr("reader", key, storage.ErrNotFound)
	}
	size := fi.Size()
	if offset > size {
		f.Close()
		return nil, opErr("reader", key, fmt.Errorf("%w: offset %d past size %d", storage.ErrInvalidRange, offset, size))
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	// The open file keeps reading the version we opened even if a writer
	// renames a new one into place meanwhile.
	return &fileReader{f: f, r: storage.ContextReader(ctx, io.NewSectionReader(f, offset, n))}, nil
}

type fileReader struct {
	f *os.File
	r io.Reader
}

func (r *fileReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *fileReader) Close() error               { return r.f.Close() }

// Put implements storage.Driver.
func (d *Driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	if err := checkKey("put", key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, opErr("put", key, err)
	}
	final := d.path(key)
	if opts.CreateOnly {
		// Fail before reading the body if we already know we lose; the
		// link below is what makes the check atomic.
		if fi, err := os.Lstat(final); err == nil && !fi.IsDir() {
			return storage.Info{}, opErr("put", key, storage.ErrExists)
		}
	}
	f, err := os.CreateTemp(filepath.Join(d.root, tmpDir), "put-*")
	if err != nil {
		return storage.Info{}, opErr("put", key, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename this fails harmlessly
	fi, err := writeFile(ctx, f, r)
	if err != nil {
		return storage.Info{}, opErr("put", key, err)
	}
	if opts.CreateOnly {
		err = d.place(final, func() error { return os.Link(tmp, final) })
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Lstat(final); serr != nil || !fi.IsDir() {
				return storage.Info{}, opErr("put", key, storage.ErrExists)
			}
		}
	} else {
		err = d.place(final, func() error { return os.Rename(tmp, final) })
	}
	if err != nil {
		return storage.Info{}, opErr("put", key, err)
	}
	return infoOf(key, fi), nil
}

// writeFile copies r into f, stamps the mtime, fsyncs and closes f, and
// returns its final FileInfo. f is closed in every case.
func writeFile(ctx context.Context, f *os.File, r io.Reader) (fs.FileInfo, error) {
	// Hiding f's ReaderFrom keeps the copy on our bounded buffer.
	_, err := io.CopyBuffer(struct{ io.Writer }{f}, storage.ContextReader(ctx, r), make([]byte, copyBuffer))
	return finishFile(f, err)
}

// finishFile ends a write to f that so far returned err: it stamps the
// mtime, fsyncs, stats and closes f (closing it in every case).
func finishFile(f *os.File, err error) (fs.FileInfo, error) {
	if err == nil {
		err = stampAndSync(f)
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return fi, err
}

// stampAndSync sets the mtime from the wall clock, so it has nanosecond
// resolution whatever the kernel's timestamp granularity (the ETag relies
// on it), and flushes data and metadata.
func stampAndSync(f *os.File) error {
	now := time.Now()
	if err := os.Chtimes(f.Name(), now, now); err != nil {
		return err
	}
	return f.Sync()
}

// place runs move (a rename or link onto final) after creating final's
// parent directories, then fsyncs the parent so the new name is durable.
// A concurrent Delete may remove an empty parent between MkdirAll and
// move, so ENOENT is retried.
func (d *Driver) place(final string, move func() error) error {
	dir := filepath.Dir(final)
	var err error
	for range renameRetries {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return keyConflict(err)
		}
		if err = move(); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := os.Lstat(final); serr == nil && fi.IsDir() {
				return fmt.Errorf("key is a prefix of other keys, which a filesystem cannot store as an object: %w", err)
			}
		}
		return keyConflict(err)
	}
	return syncDir(dir)
}

// keyConflict explains the errors a filesystem gives when one key is a
// prefix "directory" of another ("a" and "a/b"), which object stores allow.
func keyConflict(err error) error {
	if errors.Is(err, errNotDir) || errors.Is(err, errIsDir) {
		return fmt.Errorf("key conflicts with another key used as its directory: %w", err)
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete implements storage.Driver.
func (d *Driver) Delete(ctx context.Context, key string) error {
	if err := checkKey("delete", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opErr("delete", key, err)
	}
	return d.delete(key)
}

func (d *Driver) delete(key string) error {
	p := d.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if err = translate(err); errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return opErr("delete", key, err)
	}
	if fi.IsDir() {
		return nil // a prefix of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return opErr("delete", key, err)
	}
	d.removeEmptyParents(filepath.Dir(p))
	return nil
}

// removeEmptyParents removes now-empty directories up to the root, so the
// tree does not keep one directory per key ever written. Removing a
// non-empty directory fails, which ends the climb; a racing Put recreates
// what it needs (see place).
func (d *Driver) removeEmptyParents(dir string) {
	for dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// DeleteBatch implements storage.Driver. Every key is checked before any is
// deleted, so an invalid key deletes nothing.
func (d *Driver) DeleteBatch(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := checkKey("delete", k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return opErr("delete", k, err)
		}
		if err := d.delete(k); err != nil {
			return err
		}
	}
	return nil
}
