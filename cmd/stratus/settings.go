package main

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file maps configuration key paths ("storage.filesystem.root") onto the
// fields of the typed Config, so that environment variables
// (STRATUS_STORAGE_FILESYSTEM_ROOT) and --set flags reach exactly the keys the
// YAML file has, with the same parsers. The key path of a field is its chain
// of yaml tags; nothing is registered by hand, so a new config field is
// settable from the environment the moment it exists.

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// configEnvVar names the configuration file rather than a key.
const configEnvVar = "STRATUS_CONFIG"

// leaf is one settable configuration key.
type leaf struct {
	path  string // yaml key path, dot separated
	field reflect.Value
}

// envName is the environment variable that overrides a key path.
func envName(path string) string {
	return "STRATUS_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// leaves lists every settable key under v (a pointer to a struct), sorted.
func leaves(v any) []leaf {
	var out []leaf
	collectLeaves(reflect.ValueOf(v).Elem(), "", &out)
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func collectLeaves(v reflect.Value, prefix string, out *[]leaf) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if isNestedStruct(fv) {
			collectLeaves(fv, path, out)
			continue
		}
		*out = append(*out, leaf{path: path, field: fv})
	}
}

// isNestedStruct tells sections (recursed into) from values that parse
// themselves from text (set as one key).
func isNestedStruct(v reflect.Value) bool {
	return v.Kind() == reflect.Struct && !reflect.PointerTo(v.Type()).Implements(textUnmarshalerType)
}

// setValue parses s into the field with the rules the YAML decoder uses.
func setValue(v reflect.Value, s string) error {
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. 30s, 5m, 1h)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid unsigned integer %q", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(f)
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		if err := setValue(nv.Elem(), s); err != nil {
			return err
		}
		v.Set(nv)
	case reflect.Slice:
		// Lists come as comma-separated items: STRATUS_REDIS_ADDRS=a:6379,b:6379.
		var items []string
		if strings.TrimSpace(s) != "" {
			items = strings.Split(s, ",")
		}
		sl := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			if err := setValue(sl.Index(i), strings.TrimSpace(item)); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(sl)
	default:
		return fmt.Errorf("cannot set a %s from text", v.Type())
	}
	return nil
}

// setKey sets one key path, as --set storage.driver=s3 does.
func setKey(cfg any, path, value string) error {
	for _, l := range leaves(cfg) {
		if l.path == path {
			if err := setValue(l.field, value); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: unknown configuration key", path)
}

// applyEnv sets every key that has a STRATUS_ variable in env, returns
// the key paths it set, and reports STRATUS_ variables that match no key,
// since a typo there would otherwise be silently ignored.
func applyEnv(cfg any, env []string) ([]string, error) {
	byName := map[string]leaf{}
	for _, l := range leaves(cfg) {
		byName[envName(l.path)] = l
	}
	var errs []string
	var set []string
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "STRATUS_") || name == configEnvVar {
			continue
		}
		l, known := byName[name]
		if !known {
			errs = append(errs, fmt.Sprintf("%s: no configuration key has this environment variable", name))
			continue
		}
		if err := setValue(l.field, value); err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %v", l.path, name, err))
			continue
		}
		set = append(set, l.path)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return set, fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return set, nil
}
