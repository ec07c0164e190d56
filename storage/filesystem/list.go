package filesystem

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/stratus-registry/stratus/storage"
)

// List implements storage.Driver. It walks only the directory that holds
// the prefix and its subdirectories, in the byte order of full keys, and
// stops once it has one object more than the page (to set More exactly).
// Memory is one page plus the names of one directory per level.
func (d *Driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if err := ctx.Err(); err != nil {
		return storage.ListPage{}, opErr("list", prefix, err)
	}
	if limit <= 0 {
		limit = pageSize
	}
	// Every key under prefix lives below the directory named by prefix up
	// to its last slash. If that is not a valid key no key can match, and
	// it must not be joined to the root ("../").
	dirKey := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey = prefix[:i]
		if checkKey("list", dirKey) != nil {
			return storage.ListPage{}, nil
		}
	}
	w := &walker{d: d, ctx: ctx, prefix: prefix, startAfter: startAfter, want: limit + 1}
	if _, err := w.walk(dirKey); err != nil {
		return storage.ListPage{}, opErr("list", prefix, err)
	}
	page := storage.ListPage{Objects: w.out}
	if len(page.Objects) > limit {
		page.Objects, page.More = page.Objects[:limit], true
	}
	return page, nil
}

type walker struct {
	d          *Driver
	ctx        context.Context
	prefix     string
	startAfter string
	want       int
	out        []storage.Info
}

type dirEntry struct {
	// sortName is the name, with "/" appended for a directory: its keys
	// are name+"/"+..., so that is where they fall among its siblings
	// ("a.b" < "a/x" < "a0").
	sortName string
	entry    fs.DirEntry
}

// walk appends the matching objects under dirKey ("" for the root) to
// w.out in key order and reports whether the page is full.
func (w *walker) walk(dirKey string) (bool, error) {
	if err := w.ctx.Err(); err != nil {
		return false, err
	}
	dir := w.d.root
	if dirKey != "" {
		dir = w.d.path(dirKey)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		// The directory may be gone (a concurrent Delete) or never
		// existed, or a file may stand where it would be: no keys.
		if errors.Is(translate(err), storage.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	sorted := make([]dirEntry, 0, len(entries))
	for _, e := range entries {
		if dirKey == "" && (e.Name() == tmpDir || e.Name() == uploadsDir) {
			continue
		}
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		sorted = append(sorted, dirEntry{sortName: name, entry: e})
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].sortName < sorted[j].sortName })

	keyPrefix := ""
	if dirKey != "" {
		keyPrefix = dirKey + "/"
	}
	for _, de := range sorted {
		key := keyPrefix + de.sortName
		if de.entry.IsDir() {
			// key is the directory's keys' common prefix, slash included.
			if !strings.HasPrefix(key, w.prefix) && !strings.HasPrefix(w.prefix, key) {
				continue
			}
			if w.startAfter > key && !strings.HasPrefix(w.startAfter, key) {
				continue // every key below sorts before startAfter
			}
			if full, err := w.walk(strings.TrimSuffix(key, "/")); full || err != nil {
				return full, err
			}
			continue
		}
		if !strings.HasPrefix(key, w.prefix) || key <= w.startAfter || !storage.ValidKey(key) {
			continue
		}
		fi, err := de.entry.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted meanwhile, or not an object (a symlink)
		}
		w.out = append(w.out, infoOf(key, fi))
		if len(w.out) >= w.want {
			return true, nil
		}
	}
	return false, nil
}
