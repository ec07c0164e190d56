package terraform

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// modules are the reusable modules; each has a README and examples/.
var modules = []string{"s3", "gcs", "azure"}

// module is the parsed .tf files of one directory (a Terraform module).
type module struct {
	dir       string
	variables map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	blocks    []*hclsyntax.Block // every top-level block
}

// parseModule parses every .tf file of dir. The parser is HCL's native
// syntax parser, the one Terraform itself uses.
func parseModule(t *testing.T, dir string) *module {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no .tf files (%v)", dir, err)
	}
	m := &module{
		dir:       dir,
		variables: map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
	}
	parser := hclparse.NewParser()
	for _, name := range files {
		f, diags := parser.ParseHCLFile(name)
		if diags.HasErrors() {
			t.Fatalf("%s", diags.Error())
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			m.blocks = append(m.blocks, b)
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "output":
				m.outputs[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.locals[name]; dup {
						t.Fatalf("%s: local %s defined twice", dir, name)
					}
					m.locals[name] = a
				}
			}
		}
	}
	return m
}

// tfFiles lists every .tf file under the terraform directory.
func tfFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && e.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if !e.IsDir() && filepath.Ext(path) == ".tf" {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no .tf files found")
	}
	return out
}

// TestFilesParseAndAreCanonical: every file parses, and `terraform fmt`
// would leave it alone (hclwrite.Format is what terraform fmt runs).
func TestFilesParseAndAreCanonical(t *testing.T) {
	for _, name := range tfFiles(t) {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos); diags.HasErrors() {
				t.Fatalf("%s", diags.Error())
			}
			if formatted := hclwrite.Format(src); !bytes.Equal(formatted, src) {
				t.Errorf("not in canonical format; run terraform fmt (hclwrite.Format gives:\n%s)", formatted)
			}
		})
	}
}

// TestModules: every module and example declares its inputs fully and
// has outputs; the reusable modules pin their providers and come with a
// README and at least one example.
func TestModules(t *testing.T) {
	dirs := map[string]bool{}
	for _, name := range tfFiles(t) {
		dirs[filepath.Dir(name)] = true
	}
	for _, mod := range modules {
		if !dirs[mod] {
			t.Errorf("module %s has no .tf files", mod)
		}
		if _, err := os.Stat(filepath.Join(mod, "README.md")); err != nil {
			t.Errorf("module %s: %v", mod, err)
		}
		examples, _ := filepath.Glob(filepath.Join(mod, "examples", "*", "*.tf"))
		if len(examples) == 0 {
			t.Errorf("module %s has no examples/", mod)
		}
	}
	for dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			m := parseModule(t, dir)
			for name, v := range m.variables {
				for _, attr := range []string{"type", "description"} {
					if _, ok := v.Body.Attributes[attr]; !ok {
						t.Errorf("variable %q has no %s", name, attr)
					}
				}
			}
			if len(m.outputs) == 0 {
				t.Error("no outputs")
			}
			for name, o := range m.outputs {
				for _, attr := range []string{"value", "description"} {
					if _, ok := o.Body.Attributes[attr]; !ok {
						t.Errorf("output %q has no %s", name, attr)
					}
				}
			}
			if slices.Contains(modules, dir) {
				if _, ok := m.outputs["stratus_config"]; !ok {
					t.Error("no stratus_config output (the storage block users paste)")
				}
				if !m.hasRequiredProviders() {
					t.Error("no terraform { required_providers } block")
				}
			}
		})
	}
}

func (m *module) hasRequiredProviders() bool {
	for _, b := range m.blocks {
		if b.Type != "terraform" {
			continue
		}
		for _, inner := range b.Body.Blocks {
			if inner.Type == "required_providers" && len(inner.Body.Attributes) > 0 {
				return true
			}
		}
	}
	return false
}
