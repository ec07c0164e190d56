package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/stratus-registry/stratus/registry/content"
)

// maxListPage bounds a tags or catalog response; clients follow the Link
// header for the rest.
const maxListPage = 10000

// pageParams reads ?n= and ?last=. n absent means "as many as allowed".
func pageParams(q url.Values) (n int, last string, err error) {
	n = maxListPage
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 0 {
			return 0, "", newError(codePaginationInvalid, "n=%q: want a non-negative integer", s)
		}
		n = min(v, maxListPage)
	}
	return n, q.Get("last"), nil
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
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	tags, more, err := repo.Tags(ctx, last, n)
	if err != nil {
		return err
	}
	// An empty page, with or without last, is where an unknown repository
	// shows: answer 404 for it either way, 200 with no tags for a known one.
	if len(tags) == 0 {
		if err := repo.Exists(ctx); err != nil {
			return nameErr(err, rt.name)
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

func nameErr(err error, name string) error {
	if hasCode(err, codeNameUnknown) {
		return newError(codeNameUnknown, "repository %s is not known", name).
			withDetail(map[string]string{"name": name}).withCause(err)
	}
	return err
}

func (g *Registry) getCatalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	repos, more, err := g.content.Repositories(r.Context(), last, n)
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

// maxReferrersPage bounds the bytes of the descriptors in one referrers
// response; the rest follows through the Link header (distribution spec
// 1.1, "Listing Referrers"). It is the 4 MiB clients accept for an index.
// A single descriptor larger than that is still sent, alone on its page:
// its size is bounded by the manifest's.
const maxReferrersPage = 4 << 20

// getReferrers answers the referrers API. It always returns an index,
// empty when nothing refers to the subject (never 404). A response holds
// at most max_referrers descriptors and maxReferrersPage bytes of them; a
// Link header names the next page, whose ?last= is where this one ended.
func (g *Registry) getReferrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigestParam(rt.arg, "subject digest")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	filter, last := q.Get("artifactType"), q.Get("last")
	if !content.ValidReferrersCursor(last) {
		return newError(codePaginationInvalid, "last=%q is not a referrers page cursor", last)
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	page, err := repo.Referrers(r.Context(), d, content.ReferrersQuery{
		Last: last, ArtifactType: filter, MaxEntries: g.cfg.MaxReferrers, MaxBytes: maxReferrersPage,
	})
	if err != nil {
		return err
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if page.More {
		next := url.Values{"last": {page.Next}}
		if filter != "" {
			next.Set("artifactType", filter)
		}
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/referrers/%s?%s>; rel="next"`, rt.name, d, next.Encode()))
	}
	var body bytes.Buffer
	body.Grow(page.Bytes + len(page.Records) + 128)
	body.WriteString(`{"schemaVersion":2,"mediaType":"` + content.MediaTypeOCIIndex + `","manifests":[`)
	for i, rec := range page.Records {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(rec)
	}
	body.WriteString("]}")
	w.Header().Set("Content-Type", content.MediaTypeOCIIndex)
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body.Bytes())
	return err
}
