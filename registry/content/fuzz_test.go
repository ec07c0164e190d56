package content

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The fuzz targets check that parsers of untrusted input never panic and
// that what they accept satisfies the invariants the layout relies on.

func FuzzParseManifest(f *testing.F) {
	cfg := `{"mediaType":"a/b","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}`
	f.Add(mtOCIManifest, `{"schemaVersion":2,"config":`+cfg+`,"layers":[`+cfg+`]}`)
	f.Add(mtOCIIndex, `{"schemaVersion":2,"manifests":[`+cfg+`]}`)
	f.Add("", `{"schemaVersion":2,"mediaType":"`+mtDockerList+`","manifests":[]}`)
	f.Add(mtOCIManifest, `{"schemaVersion":2,"config":`+cfg+`,"subject":`+cfg+`}`)
	f.Add(mtOCIManifest, `{"schemaVersion":2,"config":`+cfg+`,"layers":[`+cfg+`],"LAYERS":[]}`)
	f.Add(mtOCIManifest, `{"schemaVersion":2,"config":`+cfg+`,"layers":[`+cfg+`],"layers":[]}`)
	f.Add(mtOCIIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:`+strings.Repeat("1", 64)+`","size":2,"platform":{"os":"linux","OS":"windows"}}]}`)
	f.Add(mtOCIManifest, `{"ſchemaVersion":1,"schemaVersion":2,"config":`+cfg+`,"annotations":{"a":"<","A":" "}}`)
	f.Fuzz(func(t *testing.T, ct, body string) {
		pushed, pushErr := ParseNewManifest(ct, []byte(body))
		pm, err := ParseManifest(ct, []byte(body))
		if pushErr == nil && (err != nil || !reflect.DeepEqual(pushed.Refs, pm.Refs) || pushed.MediaType != pm.MediaType) {
			t.Fatalf("a push accepted what a stored read does not: %v", err)
		}
		if pushErr != nil && !errors.Is(pushErr, ErrManifestInvalid) {
			t.Fatalf("push error %v is not MANIFEST_INVALID", pushErr)
		}
		if pushErr == nil && len(pushed.ArtifactType) > maxArtifactTypeLen {
			t.Fatalf("accepted artifactType of %d bytes", len(pushed.ArtifactType))
		}
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("error %v is not MANIFEST_INVALID", err)
			}
			return
		}
		if _, known := manifestKinds[pm.MediaType]; !known {
			t.Fatalf("accepted media type %q", pm.MediaType)
		}
		for _, r := range pm.Refs {
			if r.Size < 0 || r.Digest == "" {
				t.Fatalf("bad ref %+v", r)
			}
		}
	})
}

// FuzzCheckJSONKeys checks the key check against an independent reading of
// the same body. When it accepts: no object has two equal keys, no spec
// object has keys equal under strings.EqualFold (which encoding/json's fold
// matches), and Go's case-insensitive decoding of the body equals the
// decoding of the body with every non-exact key of the spec objects removed,
// i.e. what a case-sensitive parser reads.
func FuzzCheckJSONKeys(f *testing.F) {
	d := `{"mediaType":"a/b","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2}`
	for _, s := range []string{
		`{"schemaVersion":2,"config":` + d + `,"layers":[` + d + `]}`,
		`{"layers":[` + d + `],"LAYERS":[]}`,
		`{"layers":[],"layers":[` + d + `]}`,
		`{"annotations":{"a":"1","A":"2","a":"3"}}`,
		`{"manifests":[{"platform":{"os":"linux","OS":"windows"}}]}`,
		`{"ſchemaVersion":2,"\u212Aey":1,"key":2}`,
		`{"config":{"MediaType":"x","mediaType":"y"}}`,
		`{"x":{"y":[{"z":1,"Z":2}]},"subject":{"digest":"a","Digest":"b"}}`,
		`{"a":1e400,"size":12345678901234567890}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if checkJSONKeys([]byte(body)) != nil {
			return
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		tree, err := readJSONTree(dec)
		if err != nil {
			t.Fatalf("accepted a body the oracle cannot read: %v", err)
		}
		if err := tree.check(manifestShape, true); err != nil {
			t.Fatalf("accepted %q: %v", body, err)
		}
		var direct, exact manifestDoc
		errDirect := json.NewDecoder(strings.NewReader(body)).Decode(&direct)
		errExact := json.Unmarshal(tree.exact(manifestShape, true), &exact)
		if (errDirect == nil) != (errExact == nil) || !reflect.DeepEqual(direct, exact) {
			t.Fatalf("%q: Go reads %+v (%v), a case-sensitive reader %+v (%v)", body, direct, errDirect, exact, errExact)
		}
	})
}

// jsonTree is a JSON value with object keys kept in order, duplicates
// included: what encoding/json's maps and structs cannot show.
type jsonTree struct {
	keys   []string    // object keys, with vals
	vals   []*jsonTree // object values or array elements
	isObj  bool
	isArr  bool
	scalar any
}

func readJSONTree(dec *json.Decoder) (*jsonTree, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return &jsonTree{scalar: tok}, nil
	}
	n := &jsonTree{isObj: d == '{', isArr: d == '['}
	for dec.More() {
		if n.isObj {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k.(string))
		}
		v, err := readJSONTree(dec)
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
	}
	_, err = dec.Token()
	return n, err
}

// check looks for equal keys the slow way: every pair of every object.
func (n *jsonTree) check(shape *jsonShape, strict bool) error {
	for i, k := range n.keys {
		for _, k2 := range n.keys[:i] {
			if k == k2 || strict && strings.EqualFold(k, k2) {
				return fmt.Errorf("keys %q and %q", k2, k)
			}
		}
		if strict {
			for name := range shape.fields {
				if strings.EqualFold(k, name) && k != name {
					return fmt.Errorf("key %q for field %q", k, name)
				}
			}
		}
	}
	for i, v := range n.vals {
		childShape, childStrict := shape, strict
		if n.isObj {
			childShape, childStrict = nil, false
			if strict {
				childShape = shape.fields[n.keys[i]]
				childStrict = childShape != nil
			}
		}
		if err := v.check(childShape, childStrict); err != nil {
			return err
		}
	}
	return nil
}

// exact re-encodes the tree keeping, in spec objects, only the keys that
// are exactly a field name: the document a case-sensitive parser sees.
func (n *jsonTree) exact(shape *jsonShape, strict bool) []byte {
	switch {
	case n.isArr:
		parts := make([][]byte, len(n.vals))
		for i, v := range n.vals {
			parts[i] = v.exact(shape, strict)
		}
		return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	case n.isObj:
		var parts [][]byte
		for i, k := range n.keys {
			var child *jsonShape
			if strict {
				var known bool
				if child, known = shape.fields[k]; !known {
					continue
				}
			}
			kb, _ := json.Marshal(k)
			parts = append(parts, append(append(kb, ':'), n.vals[i].exact(child, child != nil)...))
		}
		return append(append([]byte("{"), bytes.Join(parts, []byte(","))...), '}')
	}
	b, _ := json.Marshal(n.scalar)
	return b
}
