package ui

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

const defaultTagPage = 25

type repoPage struct {
	Repo      string
	Tags      []tagRow
	Next      string
	CanDelete bool
}

type tagRow struct {
	Tag
	summary
	// Err is why the manifest could not be summarised ("" normally).
	Err  string
	Pull []pullCmd
}

type pullCmd struct {
	Tool, Cmd string
}

// pullCommands are copy-paste pulls of repo:tag from host, the name the
// browser used to reach this registry.
func pullCommands(host, repo, tag string) []pullCmd {
	ref := host + "/" + repo + ":" + tag
	return []pullCmd{
		{"docker", "docker pull " + ref},
		{"podman", "podman pull " + ref},
		{"crane", "crane pull " + ref + " image.tar"},
	}
}

func (u *UI) repository(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	if err := u.visible(r, v, rt.repo); err != nil {
		return err
	}
	q := r.URL.Query()
	last := q.Get("last")
	if last != "" && !content.ValidTag(last) {
		return errBadRequest("last: not a tag")
	}
	n, err := pageSize(r, defaultTagPage)
	if err != nil {
		return err
	}
	tags, more, err := u.src.Tags(r.Context(), rt.repo, last, n)
	if err != nil {
		return err
	}
	p := repoPage{Repo: rt.repo, CanDelete: u.canDelete(r, v, rt.repo)}
	sz := &sizer{src: u.src, repo: rt.repo, childReads: maxChildReads}
	for _, t := range tags {
		row := tagRow{Tag: t, Pull: pullCommands(r.Host, rt.repo, t.Name)}
		s, err := sz.summarize(r.Context(), t.Digest)
		if err != nil {
			if r.Context().Err() != nil {
				return r.Context().Err()
			}
			row.Err = "manifest unreadable: " + err.Error()
		}
		row.summary = s
		p.Tags = append(p.Tags, row)
	}
	if more && len(tags) > 0 {
		next := url.Values{"last": {tags[len(tags)-1].Name}}
		if q.Has("n") {
			next.Set("n", strconv.Itoa(n))
		}
		p.Next = repoURL(rt.repo) + "?" + next.Encode()
	}
	u.render(w, r, v, http.StatusOK, "repo", rt.repo, p)
	return nil
}

// tagRedirect sends /-/tag/<tag> to the manifest page of its digest.
func (u *UI) tagRedirect(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	if err := u.visible(r, v, rt.repo); err != nil {
		return err
	}
	d, err := u.src.ResolveTag(r.Context(), rt.repo, rt.tag)
	if err != nil {
		return err
	}
	http.Redirect(w, r, manifestURL(rt.repo, d), http.StatusSeeOther)
	return nil
}

// digestParam parses an optional digest query or form value.
func digestParam(s string) (digest.Digest, error) {
	if s == "" {
		return "", nil
	}
	d, err := content.ParseDigest(s)
	if err != nil {
		return "", errBadRequest("digest: " + err.Error())
	}
	return d, nil
}
