package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/stratus-registry/stratus/registry/content"
)

// maxReferrersPage bounds the bytes of the descriptors in one referrers
// response; the rest follows through the Link header (distribution spec
// 1.1, "Listing Referrers"). It is the 4 MiB clients accept for an index.
// A single descriptor larger than that is still sent, alone on its page:
// its size is bounded by the manifest's.
const maxReferrersPage = 4 << 20

// getReferrers answers the referrers API. It always returns an index,
// empty when nothing refers to the subject (never 404). A response holds
// at most n (?n=, capped at max_referrers) descriptors and
// maxReferrersPage bytes of them, reserved from the memory budget while it
// is built; a Link header names the next page, whose ?last= is where this
// one ended.
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
	n := g.cfg.MaxReferrers
	if s := q.Get("n"); s != "" {
		v, perr := strconv.Atoi(s)
		if perr != nil || v < 1 {
			return newError(codePaginationInvalid, "n=%q: want a positive integer", s)
		}
		n = min(v, n)
	}
	repo, err := g.repo(rt)
	if err != nil {
		return err
	}
	// The page and the body built from it: twice the page's byte bound.
	release, err := g.budget.Acquire(r.Context(), 2*maxReferrersPage)
	if err != nil {
		return err
	}
	defer release()
	page, err := repo.Referrers(r.Context(), d, content.ReferrersQuery{
		Last: last, ArtifactType: filter, MaxEntries: n, MaxBytes: maxReferrersPage,
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
		if q.Has("n") {
			next.Set("n", strconv.Itoa(n))
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
