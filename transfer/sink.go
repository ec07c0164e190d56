package transfer

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// sink is where an export writes a layout. Files are written once each;
// the export writes blobs first, then index.json, then oci-layout, so a
// layout with its marker is complete.
type sink interface {
	// write stores size bytes from r at layout path p.
	write(p string, size int64, r io.Reader) error
	// commit makes the layout visible; abort removes what was written.
	commit() error
	abort()
}

// dirSink writes a layout directory. Each file is written to a temporary
// name in its final directory and renamed into place, so a reader never
// sees a partial blob and an interrupted export leaves no file that
// claims a digest it does not hold.
type dirSink struct{ root string }

func newDirSink(root string) (*dirSink, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create the layout directory: %w", err)
	}
	return &dirSink{root: root}, nil
}

func (d *dirSink) write(p string, size int64, r io.Reader) error {
	final := filepath.Join(d.root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-*")
	if err != nil {
		return err
	}
	n, err := io.Copy(tmp, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: wrote %d bytes, want %d", p, n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", final, err)
	}
	return nil
}

func (d *dirSink) commit() error { return nil }

// abort leaves the blobs already written: each is complete and
// content-addressed, so a re-run of the export reuses the directory.
func (d *dirSink) abort() {}

// tarSink writes the layout as one tar stream to a temporary file next to
// the target and renames it into place on commit.
type tarSink struct {
	final string
	f     *os.File
	tw    *tar.Writer
	now   time.Time
}

func newTarSink(final string, now time.Time) (*tarSink, error) {
	f, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-*")
	if err != nil {
		return nil, fmt.Errorf("create the archive: %w", err)
	}
	return &tarSink{final: final, f: f, tw: tar.NewWriter(f), now: now}, nil
}

func (t *tarSink) write(p string, size int64, r io.Reader) error {
	h := &tar.Header{Typeflag: tar.TypeReg, Name: p, Size: size, Mode: 0o644, ModTime: t.now, Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := io.Copy(t.tw, r); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (t *tarSink) commit() error {
	err := t.tw.Close()
	if err == nil {
		err = t.f.Sync()
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.f.Name(), t.final)
	}
	if err != nil {
		os.Remove(t.f.Name())
		return fmt.Errorf("write %s: %w", t.final, err)
	}
	return nil
}

func (t *tarSink) abort() {
	t.f.Close()
	os.Remove(t.f.Name())
}
