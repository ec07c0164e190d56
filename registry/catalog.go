package registry

import "net/http"

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
