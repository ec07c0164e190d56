package registry

import (
	"context"
	"net/http"
)

func (g *Registry) getCatalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pageParams(r.URL.Query())
	if err != nil {
		return err
	}
	repos, more, err := g.catalogPage(r.Context(), r, last, n)
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

// catalogPage is up to n repositories after last that the caller may pull,
// and whether more follow. Without a PullFilter it is one store page. With
// one, store pages are read and filtered until n+1 visible names are found
// (the extra one only proves that a next page exists) or the store runs
// out; memory stays at one store page. The Link cursor is always a name
// the caller was shown, so it reveals nothing the filter hid.
func (g *Registry) catalogPage(ctx context.Context, r *http.Request, last string, n int) ([]string, bool, error) {
	filter, ok := g.auth.(PullFilter)
	if !ok {
		return g.content.Repositories(ctx, last, n)
	}
	if n == 0 {
		return []string{}, false, nil
	}
	out := []string{}
	for {
		page, more, err := g.content.Repositories(ctx, last, n)
		if err != nil {
			return nil, false, err
		}
		for _, name := range page {
			if !filter.CanPull(ctx, r, name) {
				continue
			}
			if len(out) == n {
				return out, true, nil
			}
			out = append(out, name)
		}
		if !more || len(page) == 0 {
			return out, false, nil
		}
		last = page[len(page)-1]
	}
}
