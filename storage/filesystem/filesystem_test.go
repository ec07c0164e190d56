package filesystem_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/storage"
	"github.com/stratus-registry/stratus/storage/drivertest"
	"github.com/stratus-registry/stratus/storage/filesystem"
)

func TestDriver(t *testing.T) {
	root := t.TempDir()
	drivertest.Run(t, func(t *testing.T) storage.Driver { return newTestDriver(t, root) })
}

// newTestDriver opens a fresh instance over root.
func newTestDriver(t *testing.T, root string) *filesystem.Driver {
	t.Helper()
	d, err := filesystem.New(filesystem.Config{Root: root})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     filesystem.Config
		wantErr string
	}{
		{"set", filesystem.Config{Root: "/var/lib/stratus"}, ""},
		{"relative", filesystem.Config{Root: "data"}, ""},
		{"empty", filesystem.Config{}, "storage.filesystem.root: required"},
		{"blank", filesystem.Config{Root: "  "}, "storage.filesystem.root: required"},
		{"NUL", filesystem.Config{Root: "a\x00b"}, "storage.filesystem.root: contains a NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate = %v; want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := filesystem.New(filesystem.Config{}); err == nil {
		t.Errorf("New with an empty root succeeded")
	}
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	newTestDriver(t, root)
	for _, dir := range []string{root, filepath.Join(root, "_tmp"), filepath.Join(root, "_uploads")} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v; want a directory", dir, err)
		}
	}
}

func TestReservedNames(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newTestDriver(t, root)
	if _, err := d.Put(ctx, "blobs/x", strings.NewReader("x"), storage.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	// An upload in progress and a leftover temporary file must not show.
	m, err := d.NewMultipart(ctx, "data/upload")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Abort(ctx)
	if _, err := m.Append(ctx, strings.NewReader("partial")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "_tmp", "put-leftover"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, key := range []string{"_tmp", "_tmp/x", "_uploads", "_uploads/ABC"} {
		t.Run("refuses "+key, func(t *testing.T) {
			if _, err := d.Put(ctx, key, strings.NewReader("x"), storage.PutOptions{Size: 1}); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Put: %v; want ErrInvalidKey", err)
			}
			if _, err := d.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Stat: %v; want ErrInvalidKey", err)
			}
			if err := d.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Delete: %v; want ErrInvalidKey", err)
			}
		})
	}
	// Names that only start like a reserved one are ordinary keys.
	for _, key := range []string{"_tmpx", "x/_tmp", "x/_uploads/y"} {
		if _, err := d.Put(ctx, key, strings.NewReader("x"), storage.PutOptions{Size: 1}); err != nil {
			t.Errorf("Put(%q): %v", key, err)
		}
	}

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"_tmpx", "blobs/x", "x/_tmp", "x/_uploads/y"}},
		{"_", []string{"_tmpx"}},
		{"_tmp/", nil},
		{"_uploads/", nil},
		{"data/", nil},
	}
	for _, tt := range tests {
		page, err := d.List(ctx, tt.prefix, "", 0)
		if err != nil {
			t.Fatalf("List(%q): %v", tt.prefix, err)
		}
		var got []string
		for _, o := range page.Objects {
			got = append(got, o.Key)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("List(%q) = %q; want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := newTestDriver(t, root)
	for _, key := range []string{"repos/a/tags/latest", "repos/a/tags/v1", "repos/b/tags/v1"} {
		if _, err := d.Put(ctx, key, bytes.NewReader([]byte("x")), storage.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		del      string
		gone     []string // directories that must have been removed
		remained []string // directories that must still exist
	}{
		{"repos/a/tags/latest", nil, []string{"repos/a/tags"}},
		{"repos/a/tags/v1", []string{"repos/a"}, []string{"repos"}},
		{"repos/b/tags/v1", []string{"repos"}, nil},
	}
	for _, s := range steps {
		if err := d.Delete(ctx, s.del); err != nil {
			t.Fatalf("Delete(%q): %v", s.del, err)
		}
		for _, dir := range s.gone {
			if _, err := os.Stat(filepath.Join(root, dir)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Delete(%q): %s still exists (%v)", s.del, dir, err)
			}
		}
		for _, dir := range s.remained {
			if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
				t.Errorf("after Delete(%q): %s: %v", s.del, dir, err)
			}
		}
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

func TestKeyPrefixConflict(t *testing.T) {
	// Object stores allow "a" and "a/b" together; a filesystem cannot.
	// The driver must say so with an error, not corrupt either object.
	ctx := context.Background()
	d := newTestDriver(t, t.TempDir())
	put := func(key string, opts storage.PutOptions) error {
		_, err := d.Put(ctx, key, strings.NewReader("x"), opts)
		return err
	}
	if err := put("a/b", storage.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []storage.PutOptions{{Size: 1}, {Size: 1, CreateOnly: true}} {
		if err := put("a", opts); err == nil || errors.Is(err, storage.ErrExists) {
			t.Errorf("Put(a, %+v) over directory a/: %v; want a conflict error", opts, err)
		}
	}
	if err := put("a/b/c", storage.PutOptions{Size: 1}); err == nil {
		t.Errorf("Put(a/b/c) below object a/b succeeded")
	}
	if b, err := storage.ReadAll(ctx, d, "a/b", 10); err != nil || string(b) != "x" {
		t.Errorf("a/b = %q, %v; want x", b, err)
	}
}
