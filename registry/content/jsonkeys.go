package content

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The key check closes the parser differential of CVE-2021-41190. Go's
// encoding/json keeps the last of duplicate keys and matches a key to a
// struct field case-insensitively, so {"layers":[<missing>],"LAYERS":[]}
// reads as an image with no layers here while a case-sensitive client
// (or one that keeps the first duplicate) sees the missing layer. Before a
// manifest is unmarshalled, checkJSONKeys refuses:
//   - in every object, a key that appears twice;
//   - in objects of the spec (manifest, index, descriptor, platform), a key
//     equal to one of the spec's field names except in case ("LAYERS",
//     "MediaType"), and two keys equal except in case.
//
// Free-form maps (annotations) and the values of extension keys are only
// checked for exact duplicates: "a" and "A" are different annotations to
// every parser, as map keys are matched exactly.

// maxJSONDepth bounds the nesting the check follows. A manifest needs 5
// levels (index, manifests, descriptor, platform, os.features); extensions
// get room, and a hostile body cannot recurse deeply.
const maxJSONDepth = 64

// jsonShape describes an object of the spec: its exact field names and,
// for fields whose value is an object or an array of objects, their shape.
// A nil *jsonShape is a free-form object.
type jsonShape struct {
	fields map[string]*jsonShape
	folded map[string]string // foldKey(name) -> name
}

func newJSONShape(fields map[string]*jsonShape) *jsonShape {
	s := &jsonShape{fields: fields, folded: make(map[string]string, len(fields))}
	for name := range fields {
		s.folded[foldKey(name)] = name
	}
	return s
}

// The shapes of the OCI image manifest and index and of the Docker schema2
// manifest and manifest list: the top level is the union of their fields,
// as parseManifest's manifestDoc is.
var (
	platformShape = newJSONShape(map[string]*jsonShape{
		"architecture": nil, "os": nil, "os.version": nil, "os.features": nil, "variant": nil, "features": nil,
	})
	descriptorShape = newJSONShape(map[string]*jsonShape{
		"mediaType": nil, "digest": nil, "size": nil, "urls": nil, "annotations": nil,
		"data": nil, "artifactType": nil, "platform": platformShape,
	})
	manifestShape = newJSONShape(map[string]*jsonShape{
		"schemaVersion": nil, "mediaType": nil, "artifactType": nil, "config": descriptorShape,
		"layers": descriptorShape, "manifests": descriptorShape, "subject": descriptorShape, "annotations": nil,
	})
)

// errJSONKey marks a refusal by the key check (as opposed to a syntax error).
var errJSONKey = errors.New("ambiguous JSON key")

// checkJSONKeys walks the first JSON value of body as a token stream, in
// O(len(body)) time, and refuses the keys described above. It does not
// check what follows the first value.
func checkJSONKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers stay text: no float conversion can fail
	w := &keyWalker{dec: dec}
	return w.value(manifestShape, 0)
}

type keyWalker struct {
	dec  *json.Decoder
	path []pathElem
}

// pathElem is one step from the top: a key, or an index into an array.
type pathElem struct {
	key   string
	index int // -1 for a key
}

func (w *keyWalker) value(shape *jsonShape, depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= maxJSONDepth {
		return fmt.Errorf("%w: %s nests more than %d levels deep", errJSONKey, w.where(), maxJSONDepth)
	}
	switch d {
	case '{':
		return w.object(shape, depth+1)
	case '[':
		return w.array(shape, depth+1)
	}
	return fmt.Errorf("unexpected %q at %s", rune(d), w.where())
}

// array checks each element with the array's shape: an array of
// descriptors has descriptor elements.
func (w *keyWalker) array(shape *jsonShape, depth int) error {
	for i := 0; w.dec.More(); i++ {
		w.path = append(w.path, pathElem{index: i})
		if err := w.value(shape, depth); err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
	}
	_, err := w.dec.Token() // ']'
	return err
}

func (w *keyWalker) object(shape *jsonShape, depth int) error {
	seen := map[string]bool{}
	var folds map[string]string // foldKey(key) -> key, in spec objects
	if shape != nil {
		folds = map[string]string{}
	}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key at %s is not a string", w.where())
		}
		if seen[key] {
			return fmt.Errorf("%w: key %q appears twice in %s", errJSONKey, key, w.where())
		}
		seen[key] = true
		var child *jsonShape
		if shape != nil {
			f := foldKey(key)
			if name, ok := shape.folded[f]; ok && name != key {
				return fmt.Errorf("%w: key %q in %s: keys are case-sensitive, the spec's field is %q", errJSONKey, key, w.where(), name)
			}
			if other, ok := folds[f]; ok {
				return fmt.Errorf("%w: keys %q and %q in %s differ only in case", errJSONKey, other, key, w.where())
			}
			folds[f] = key
			child = shape.fields[key]
		}
		w.path = append(w.path, pathElem{key: key, index: -1})
		if err := w.value(child, depth); err != nil {
			return err
		}
		w.path = w.path[:len(w.path)-1]
	}
	_, err := w.dec.Token() // '}'
	return err
}

// where names the object being walked: "the manifest" or a path such as
// manifests[0].platform.
func (w *keyWalker) where() string {
	if len(w.path) == 0 {
		return "the manifest"
	}
	var b strings.Builder
	for i, p := range w.path {
		switch {
		case p.index >= 0:
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		case i > 0:
			b.WriteString("." + p.key)
		default:
			b.WriteString(p.key)
		}
	}
	return b.String()
}

// foldKey folds a key exactly as encoding/json does when it matches keys to
// struct fields (appendFoldedName in encoding/json/fold.go): ASCII letters
// to upper case, every other rune to the smallest rune of its Unicode
// simple-fold orbit. So "ſchemaVersion" (long s) and "\u212Aey" (Kelvin
// sign) fold like "schemaVersion" and "Key", as Go would match them.
func foldKey(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return string(out)
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
