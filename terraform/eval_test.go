package terraform

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyyaml "github.com/zclconf/go-cty-yaml"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions are the Terraform built-ins the evaluated expressions may call,
// from the same libraries Terraform takes them from (yamlencode is
// go-cty-yaml's encoder in Terraform too). An expression calling anything
// else fails the test, which then needs the function added here.
func functions() map[string]function.Function {
	return map[string]function.Function{
		"yamlencode": ctyyaml.YAMLEncodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"merge":      stdlib.MergeFunc,
		"concat":     stdlib.ConcatFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"join":       stdlib.JoinFunc,
		"split":      stdlib.SplitFunc,
		"trim":       stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"lower":      stdlib.LowerFunc,
		"format":     stdlib.FormatFunc,
		"replace":    stdlib.ReplaceFunc,
		"length":     stdlib.LengthFunc,
	}
}

// fixture stands in for a plan: input variables (the rest take their
// defaults) and the attributes of the resources and data sources the
// evaluated expressions read, by type then name.
type fixture struct {
	vars      map[string]cty.Value
	resources map[string]map[string]map[string]cty.Value
	data      map[string]map[string]map[string]cty.Value
}

// evaluator evaluates a module's expressions the way Terraform would
// after apply, for the values a fixture gives: var.* from the fixture or
// the defaults, local.* on demand (in dependency order), resource and
// data attributes from the fixture.
type evaluator struct {
	m      *module
	fix    fixture
	locals map[string]cty.Value
	active map[string]bool // locals being evaluated, to report cycles
}

func newEvaluator(m *module, fix fixture) *evaluator {
	return &evaluator{m: m, fix: fix, locals: map[string]cty.Value{}, active: map[string]bool{}}
}

// output evaluates the value of the named output.
func (e *evaluator) output(name string) (cty.Value, error) {
	o, ok := e.m.outputs[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no output %q", e.m.dir, name)
	}
	return e.eval(o.Body.Attributes["value"].Expr)
}

func (e *evaluator) eval(expr hcl.Expression) (cty.Value, error) {
	ctx, err := e.context(expr)
	if err != nil {
		return cty.NilVal, err
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s: %s", e.m.dir, diags.Error())
	}
	return v, nil
}

// context holds exactly what expr refers to.
func (e *evaluator) context(expr hcl.Expression) (*hcl.EvalContext, error) {
	vars := map[string]cty.Value{}
	locals := map[string]cty.Value{}
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		switch root {
		case "var", "local":
			name, err := attrName(tr)
			if err != nil {
				return nil, err
			}
			if root == "var" {
				vars[name], err = e.variable(name)
			} else {
				locals[name], err = e.local(name)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	vals := map[string]cty.Value{
		"var":   cty.ObjectVal(vars),
		"local": cty.ObjectVal(locals),
		"data":  nested(e.fix.data),
	}
	for typ, byName := range e.fix.resources {
		vals[typ] = objects(byName)
	}
	return &hcl.EvalContext{Variables: vals, Functions: functions()}, nil
}

// variable is the fixture's value of an input, converted to its declared
// type, or its default.
func (e *evaluator) variable(name string) (cty.Value, error) {
	decl, ok := e.m.variables[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no variable %q", e.m.dir, name)
	}
	typeAttr, ok := decl.Body.Attributes["type"]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: variable %q has no type", e.m.dir, name)
	}
	ty, diags := typeexpr.TypeConstraint(typeAttr.Expr)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s: variable %q: %s", e.m.dir, name, diags.Error())
	}
	v, given := e.fix.vars[name]
	if !given {
		def, ok := decl.Body.Attributes["default"]
		if !ok {
			return cty.NilVal, fmt.Errorf("%s: variable %q is required and the fixture has no value", e.m.dir, name)
		}
		v, diags = def.Expr.Value(nil)
		if diags.HasErrors() {
			return cty.NilVal, fmt.Errorf("%s: variable %q default: %s", e.m.dir, name, diags.Error())
		}
	}
	converted, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s: variable %q: %w", e.m.dir, name, err)
	}
	return converted, nil
}

func (e *evaluator) local(name string) (cty.Value, error) {
	if v, ok := e.locals[name]; ok {
		return v, nil
	}
	a, ok := e.m.locals[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no local %q", e.m.dir, name)
	}
	if e.active[name] {
		return cty.NilVal, fmt.Errorf("%s: local %q depends on itself", e.m.dir, name)
	}
	e.active[name] = true
	defer delete(e.active, name)
	v, err := e.eval(a.Expr)
	if err != nil {
		return cty.NilVal, fmt.Errorf("local.%s: %w", name, err)
	}
	e.locals[name] = v
	return v, nil
}

func attrName(tr hcl.Traversal) (string, error) {
	if len(tr) < 2 {
		return "", fmt.Errorf("bare %s reference", tr.RootName())
	}
	a, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return "", fmt.Errorf("%s reference without an attribute name", tr.RootName())
	}
	return a.Name, nil
}

// nested turns type -> name -> attributes into nested objects.
func nested(m map[string]map[string]map[string]cty.Value) cty.Value {
	types := map[string]cty.Value{}
	for typ, byName := range m {
		types[typ] = objects(byName)
	}
	return cty.ObjectVal(types)
}

// objects turns name -> attributes into an object of objects.
func objects(byName map[string]map[string]cty.Value) cty.Value {
	names := map[string]cty.Value{}
	for name, attrs := range byName {
		names[name] = cty.ObjectVal(attrs)
	}
	return cty.ObjectVal(names)
}

// stringList evaluates a literal list of strings.
func stringList(expr hclsyntax.Expression) ([]string, error) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	if !v.CanIterateElements() {
		return nil, fmt.Errorf("not a list: %s", v.Type().FriendlyName())
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.Type() != cty.String {
			return nil, fmt.Errorf("element %s is not a string", el.GoString())
		}
		out = append(out, el.AsString())
	}
	return out, nil
}

// strVals is a shorthand for fixtures of string attributes.
func strVals(kv map[string]string) map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range kv {
		out[k] = cty.StringVal(v)
	}
	return out
}

func TestEvaluatorReportsMissingValues(t *testing.T) {
	src := `
variable "required" {
  type        = string
  description = "x"
}
locals {
  loop = local.loop
}
output "a" {
  description = "x"
  value       = var.required
}
output "b" {
  description = "x"
  value       = local.loop
}
output "c" {
  description = "x"
  value       = aws_thing.this.id
}
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	m := &module{dir: "t", variables: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{}}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		switch b.Type {
		case "variable":
			m.variables[b.Labels[0]] = b
		case "output":
			m.outputs[b.Labels[0]] = b
		case "locals":
			for n, a := range b.Body.Attributes {
				m.locals[n] = a
			}
		}
	}
	for _, tc := range []struct{ output, want string }{
		{"a", "required and the fixture has no value"},
		{"b", "depends on itself"},
		{"c", "aws_thing"},
		{"d", "no output"},
	} {
		_, err := newEvaluator(m, fixture{}).output(tc.output)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("output %s: error %v, want one mentioning %q", tc.output, err, tc.want)
		}
	}
}
