package registry

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stratus-registry/stratus"

// modulePackage is one package of the module and what it imports.
type modulePackage struct {
	path        string   // import path
	imports     []string // of its non-test files
	testImports []string // of its test files (internal and external)
}

// modulePackages reads the imports of every package of the module with
// go/build (no go list, no network).
func modulePackages(t *testing.T) []modulePackage {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from registry/: %v", err)
	}
	var pkgs []modulePackage
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "vendor") {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(p, 0)
		if err != nil {
			if _, none := err.(*build.NoGoError); none {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		path := module
		if rel != "." {
			path += "/" + filepath.ToSlash(rel)
		}
		pkgs = append(pkgs, modulePackage{path: path, imports: bp.Imports, testImports: append(bp.TestImports, bp.XTestImports...)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// under reports whether import path p is the package dir of the module or
// below it.
func under(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}

// TestDependencyDirection pins the package graph of docs/architecture.md:
// cmd -> registry -> {storage, locking}; drivers never import registry;
// the content store and GC know no HTTP; nothing imports cmd.
func TestDependencyDirection(t *testing.T) {
	pkgs := modulePackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages; the walk is broken", len(pkgs))
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.path] = true
	}
	for _, want := range []string{"registry", "registry/content", "registry/gc", "storage", "locking", "cmd/stratus"} {
		if !seen[module+"/"+want] {
			t.Fatalf("package %s not found", want)
		}
	}
	rules := []struct {
		name string
		// applies selects the packages; tests says whether test imports
		// count too.
		applies func(pkg string) bool
		tests   bool
		refused func(imp string) bool
	}{
		{"nothing imports cmd", func(pkg string) bool { return !under(pkg, "cmd") }, true,
			func(imp string) bool { return under(imp, "cmd") }},
		{"storage never imports registry", func(pkg string) bool { return under(pkg, "storage") }, true,
			func(imp string) bool { return under(imp, "registry") }},
		{"locking never imports registry or storage", func(pkg string) bool { return under(pkg, "locking") }, true,
			func(imp string) bool { return under(imp, "registry") || under(imp, "storage") }},
		{"registry uses storage and locking only through their interfaces", func(pkg string) bool { return under(pkg, "registry") }, false,
			func(imp string) bool {
				return strings.HasPrefix(imp, module+"/") && !under(imp, "registry") &&
					imp != module+"/storage" && imp != module+"/locking"
			}},
		{"content knows no HTTP and no handlers or GC", func(pkg string) bool { return under(pkg, "registry/content") }, false,
			func(imp string) bool {
				return imp == "net/http" || strings.HasPrefix(imp, "net/http/") ||
					imp == module+"/registry" || under(imp, "registry/gc")
			}},
		{"gc knows no HTTP and no handlers", func(pkg string) bool { return under(pkg, "registry/gc") }, false,
			func(imp string) bool {
				return imp == "net/http" || strings.HasPrefix(imp, "net/http/") || imp == module+"/registry"
			}},
	}
	for _, rule := range rules {
		t.Run(rule.name, func(t *testing.T) {
			for _, p := range pkgs {
				if !rule.applies(p.path) {
					continue
				}
				imps := p.imports
				if rule.tests {
					imps = append(slices.Clone(imps), p.testImports...)
				}
				for _, imp := range imps {
					if rule.refused(imp) {
						t.Errorf("%s imports %s", p.path, imp)
					}
				}
			}
		})
	}
}
