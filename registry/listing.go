package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/stratus-registry/stratus/storage"
)

// Listing bounds: a response never holds more than maxListPage entries;
// clients follow the Link header for the rest.
const (
	listPage    = 1000
	maxListPage = 10000
)

// pageParams reads ?n= and ?last=. n absent means "as many as allowed".
func pageParams(q url.Values) (n int, last string, err error) {
	n = maxListPage
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", newError(http.StatusBadRequest, codeUnsupported, "n=%q: want a non-negative integer", s)
		}
		n = min(v, maxListPage)
	}
	return n, q.Get("last"), nil
}

// listNames lists up to n names under prefix after last, mapping each key
// to a name with toName (which returns false for keys to skip). more
// reports that names after the last one returned exist.
func (g *Registry) listNames(ctx context.Context, prefix, startAfter string, n int, toName func(key string) (string, bool)) (names []string, more bool, err error) {
	names = []string{}
	after := startAfter
	for len(names) < n {
		page, err := g.store.List(ctx, prefix, after, min(listPage, n-len(names)+1))
		if err != nil {
			return nil, false, err
		}
		for _, o := range page.Objects {
			if nm, ok := toName(o.Key); ok {
				if len(names) == n {
					return names, true, nil
				}
				names = append(names, nm)
			}
		}
		if !page.More || len(page.Objects) == 0 {
			return names, false, nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
	// Filled exactly: peek whether anything follows.
	page, err := g.store.List(ctx, prefix, after, 1)
	if err != nil {
		return nil, false, err
	}
	return names, len(page.Objects) > 0, nil
}

func setNextLink(w http.ResponseWriter, path string, n int, last string, explicitN bool) {
	q := url.Values{}
	q.Set("last", last)
	if explicitN {
		q.Set("n", strconv.Itoa(n))
	}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

func (g *Registry) getTags(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	prefix := tagsPrefix(rt.name)
	startAfter := ""
	if last != "" {
		startAfter = prefix + last
	}
	tags, more, err := g.listNames(ctx, prefix, startAfter, n, func(key string) (string, bool) {
		return strings.TrimPrefix(key, prefix), true
	})
	if err != nil {
		return err
	}
	// An empty page, with or without last, is where an unknown repository
	// shows: answer 404 for it either way, 200 with no tags for a known one.
	if len(tags) == 0 {
		if err := g.checkRepoExists(ctx, rt.name); err != nil {
			return err
		}
	}
	if more && len(tags) > 0 {
		setNextLink(w, "/v2/"+rt.name+"/tags/list", n, tags[len(tags)-1], r.URL.Query().Has("n"))
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
}

// checkRepoExists answers NAME_UNKNOWN for a repository that is not in the
// catalog: the catalog entry is what makes a repository exist (ensureRepo
// writes it on the first push).
func (g *Registry) checkRepoExists(ctx context.Context, name string) error {
	_, err := g.store.Stat(ctx, catalogKey(name))
	if errors.Is(err, storage.ErrNotFound) {
		return newError(http.StatusNotFound, codeNameUnknown, "repository %s is not known", name).
			withDetail(map[string]string{"name": name})
	}
	return err
}

func (g *Registry) getCatalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	startAfter := ""
	if last != "" {
		startAfter = catalogKey(last)
	}
	repos, more, err := g.listNames(r.Context(), catalogPrefix, startAfter, n, func(key string) (string, bool) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(key, catalogPrefix), catalogSuffix)
		return name, ok && validName(name)
	})
	if err != nil {
		return err
	}
	if more && len(repos) > 0 {
		setNextLink(w, "/v2/_catalog", n, repos[len(repos)-1], r.URL.Query().Has("n"))
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

// getReferrers answers the referrers API. It always returns an index,
// empty when nothing refers to the subject (never 404).
func (g *Registry) getReferrers(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	d, err := parseDigestParam(rt.arg, "subject digest")
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	prefix := referrersPrefix(rt.name, d)
	descs := []descriptor{}
	after := ""
	for len(descs) < g.cfg.MaxReferrers {
		page, err := g.store.List(ctx, prefix, after, 0)
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			b, err := storage.ReadAll(ctx, g.store, o.Key, maxRecordSize*16)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted while we listed
			}
			if err != nil {
				return err
			}
			var desc descriptor
			if err := json.Unmarshal(b, &desc); err != nil {
				g.logger.Warn("skipping corrupt referrer record", "key", o.Key, "err", err)
				continue
			}
			if filter == "" || desc.ArtifactType == filter {
				descs = append(descs, desc)
			}
		}
		if !page.More || len(page.Objects) == 0 {
			break
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, mtOCIIndex, struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, mtOCIIndex, descs})
}
