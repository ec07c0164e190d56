package tlsreload_test

import (
	"math/big"
	"os"
	"path/filepath"
	"testing"
)

// writeFile replaces path's content atomically (a new file renamed over
// the old), the way cert-manager's and most tools' writes land.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// secretVolume lays files out as the kubelet does for a Secret volume:
// dir/..<generation>/tls.crt, dir/..data -> ..<generation>, and
// dir/tls.crt -> ..data/tls.crt.
type secretVolume struct {
	dir string
	gen int
}

func newSecretVolume(t *testing.T, files map[string][]byte) *secretVolume {
	t.Helper()
	v := &secretVolume{dir: t.TempDir()}
	v.update(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// update writes a new generation directory and swaps ..data to it with one
// rename, then removes the old generation, as the kubelet's atomic writer
// does.
func (v *secretVolume) update(t *testing.T, files map[string][]byte) {
	t.Helper()
	v.gen++
	gen := filepath.Join(v.dir, "..gen"+big.NewInt(int64(v.gen)).String())
	if err := os.Mkdir(gen, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(gen, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmpLink := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if v.gen > 1 {
		if err := os.RemoveAll(filepath.Join(v.dir, "..gen"+big.NewInt(int64(v.gen-1)).String())); err != nil {
			t.Fatal(err)
		}
	}
}

func (v *secretVolume) path(name string) string { return filepath.Join(v.dir, name) }
