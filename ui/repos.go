package ui

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/stratus-registry/stratus/registry/content"
)

const (
	defaultPageSize = 50
	maxPageSize     = 200
	// maxScanned bounds the catalog names one page looks at while it
	// skips repositories the visitor may not see.
	maxScanned = 2000
	// catalogBatch is the smallest catalog read while filtering.
	catalogBatch = 100
)

// pageSize reads ?n=, bounded; a bad value is a 400, not a silent default.
func pageSize(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, errBadRequest("n: want a page size from 1 to " + strconv.Itoa(maxPageSize))
	}
	return n, nil
}

type reposPage struct {
	Query string
	Repos []string
	Tree  *treeNode
	Next  string // href of the next page, "" on the last
	// Truncated reports that the page stopped at the scan bound.
	Truncated bool
}

// visibleRepos appends to out up to n names after last that the visitor
// may pull, reading the catalog in batches and looking at no more than
// maxScanned names. cursor is where the next page starts; more reports
// that names may follow it.
func (u *UI) visibleRepos(r *http.Request, v visitor, prefix, last string, n int, out *[]string) (cursor string, more bool, err error) {
	cursor, more = last, true
	for scanned := 0; more && len(*out) < n && scanned < maxScanned; {
		var names []string
		batch := min(max(n-len(*out), catalogBatch), maxScanned-scanned)
		names, more, err = u.src.Repositories(r.Context(), prefix, cursor, batch)
		if err != nil {
			return "", false, err
		}
		for i, name := range names {
			scanned++
			cursor = name
			if u.canPull(r, v, name) {
				*out = append(*out, name)
			}
			if len(*out) == n {
				more = more || i < len(names)-1
				break
			}
		}
		if len(names) == 0 {
			more = false
		}
	}
	return cursor, more, nil
}

// treeNode is one namespace level of the organisation tree.
type treeNode struct {
	Name     string // this level's component
	Prefix   string // the namespace, with a trailing slash
	Repos    []string
	Children []*treeNode
}

// buildTree groups full names by their namespace components.
func buildTree(names []string) *treeNode {
	root := &treeNode{}
	for _, n := range names {
		parts := strings.Split(n, "/")
		node := root
		for i, p := range parts[:len(parts)-1] {
			node = node.child(p, strings.Join(parts[:i+1], "/")+"/")
		}
		node.Repos = append(node.Repos, n)
	}
	root.sort()
	return root
}

func (t *treeNode) sort() {
	sort.Slice(t.Children, func(i, j int) bool { return t.Children[i].Name < t.Children[j].Name })
	for _, c := range t.Children {
		c.sort()
	}
}

func (t *treeNode) child(name, prefix string) *treeNode {
	for _, c := range t.Children {
		if c.Name == name {
			return c
		}
	}
	c := &treeNode{Name: name, Prefix: prefix}
	t.Children = append(t.Children, c)
	return c
}

func (u *UI) repositories(w http.ResponseWriter, r *http.Request, _ uiRoute, v visitor) error {
	q := r.URL.Query()
	prefix, last := q.Get("q"), q.Get("last")
	if len(prefix) > content.MaxNameLength || len(last) > content.MaxNameLength || last != "" && !content.ValidName(last) {
		return errBadRequest("q and last: at most 255 characters; last must be a repository name")
	}
	n, err := pageSize(r, defaultPageSize)
	if err != nil {
		return err
	}
	p := reposPage{Query: prefix, Repos: []string{}}
	cursor, more, err := u.visibleRepos(r, v, prefix, last, n, &p.Repos)
	if err != nil {
		return err
	}
	if more {
		next := url.Values{"last": {cursor}}
		if prefix != "" {
			next.Set("q", prefix)
		}
		if q.Has("n") {
			next.Set("n", strconv.Itoa(n))
		}
		p.Next = Prefix + "?" + next.Encode()
		p.Truncated = len(p.Repos) < n
	}
	p.Tree = buildTree(p.Repos)
	u.render(w, r, v, http.StatusOK, "repos", "Repositories", p)
	return nil
}
