package registry

import "net/http"

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
