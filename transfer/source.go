package transfer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// source is a layout to read: a directory or a tar file of one. Paths are
// layout paths ("index.json", "blobs/sha256/<hex>"), built by this package
// from digests, never taken from the archive.
type source interface {
	// open returns the file at p and its size; fs.ErrNotExist if absent.
	open(p string) (io.ReadCloser, int64, error)
	// describe names p for messages (the file a user can inspect).
	describe(p string) string
	Close() error
}

// openSource opens the layout at in: a tar when in is a regular file, a
// directory otherwise.
func openSource(in string) (source, error) {
	info, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("open layout: %w", err)
	}
	if info.IsDir() {
		return dirSource{root: in}, nil
	}
	return openTar(in)
}

type dirSource struct{ root string }

func (d dirSource) open(p string) (io.ReadCloser, int64, error) {
	f, err := os.Open(filepath.Join(d.root, filepath.FromSlash(p)))
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, 0, invalid("%s is not a regular file", d.describe(p))
	}
	return f, info.Size(), nil
}

func (d dirSource) describe(p string) string { return filepath.Join(d.root, filepath.FromSlash(p)) }
func (dirSource) Close() error               { return nil }

// tarSource reads members of a tar file in place: one pass over the
// headers records where each regular member's bytes start, so blobs are
// then read as sections of the file in whatever order the import needs.
type tarSource struct {
	name    string
	f       *os.File
	members map[string]tarMember
}

type tarMember struct{ offset, size int64 }

// maxTarMembers bounds the header index kept in memory.
const maxTarMembers = 1 << 20

func openTar(name string) (*tarSource, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open layout: %w", err)
	}
	ts := &tarSource{name: name, f: f, members: make(map[string]tarMember)}
	if err := ts.index(); err != nil {
		f.Close()
		return nil, err
	}
	return ts, nil
}

func (t *tarSource) index() error {
	tr := tar.NewReader(t.f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalid("%s: reading the tar: %v", t.name, err)
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		p, ok := cleanMember(h.Name)
		if !ok {
			return invalid("%s: member %q escapes the layout", t.name, h.Name)
		}
		if h.Typeflag != tar.TypeReg {
			// Links and devices are refused rather than followed.
			return invalid("%s: member %q is not a regular file", t.name, h.Name)
		}
		if len(t.members) >= maxTarMembers {
			return invalid("%s: more than %d members", t.name, maxTarMembers)
		}
		// tar.Reader reads the underlying file block by block with no
		// read-ahead, so after Next the file offset is the member's data.
		off, err := t.f.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		t.members[p] = tarMember{offset: off, size: h.Size}
	}
}

func (t *tarSource) open(p string) (io.ReadCloser, int64, error) {
	m, ok := t.members[p]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", t.describe(p), fs.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(t.f, m.offset, m.size)), m.size, nil
}

func (t *tarSource) describe(p string) string { return t.name + ":" + p }
func (t *tarSource) Close() error             { return t.f.Close() }

// isTar reports whether out names a tar file rather than a directory.
func isTar(out string) bool { return strings.HasSuffix(out, ".tar") }
