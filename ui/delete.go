package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

type deletePage struct {
	Repo   string
	Tag    string
	Digest digest.Digest
	// What says what the delete removes.
	What string
}

// deleteTarget reads tag|digest (exactly one) from query or form values.
func deleteTarget(get func(string) string) (tag string, d digest.Digest, err error) {
	tag = get("tag")
	d, err = digestParam(get("digest"))
	if err != nil {
		return "", "", err
	}
	switch {
	case tag != "" && d != "", tag == "" && d == "":
		return "", "", errBadRequest("name exactly one of tag or digest")
	case tag != "" && !content.ValidTag(tag):
		return "", "", errBadRequest("tag: not a valid tag")
	}
	return tag, d, nil
}

func (u *UI) confirmDelete(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	if err := u.visible(r, v, rt.repo); err != nil {
		return err
	}
	tag, d, err := deleteTarget(r.URL.Query().Get)
	if err != nil {
		return err
	}
	if !u.canDelete(r, v, rt.repo) {
		return errForbidden("you may not delete in " + rt.repo)
	}
	p := deletePage{Repo: rt.repo, Tag: tag, Digest: d}
	if tag != "" {
		p.What = "tag " + rt.repo + ":" + tag + " (the manifest it points at stays, and so do its other tags)"
	} else {
		p.What = "manifest " + rt.repo + "@" + d.String() + " and every tag that points at it"
	}
	u.render(w, r, v, http.StatusOK, "delete", "Delete", p)
	return nil
}

// doDelete performs the delete through the registry's DELETE handler as
// the session user, so that authorization, immutable tags, audit and
// webhooks apply exactly as for an API client.
func (u *UI) doDelete(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	if err := u.parseForm(w, r, v); err != nil {
		return err
	}
	if err := u.visible(r, v, rt.repo); err != nil {
		return err
	}
	tag, d, err := deleteTarget(r.PostForm.Get)
	if err != nil {
		return err
	}
	ref, what := tag, rt.repo+":"+tag
	if tag == "" {
		ref, what = d.String(), rt.repo+"@"+d.String()
	}
	status, msg, err := u.apiDelete(r, v, rt.repo, ref)
	if err != nil {
		return err
	}
	f := flash{}
	switch status {
	case http.StatusAccepted:
		f = flash{OK: true, Message: "deleted " + what}
	case http.StatusNotFound:
		f.Message = "not deleted: " + what + " does not exist (any more)"
	case http.StatusMethodNotAllowed:
		f.Message = "not deleted: this registry does not allow deletes"
	case http.StatusUnauthorized, http.StatusForbidden:
		f.Message = "not deleted: " + msg
	default:
		f.Message = fmt.Sprintf("not deleted (%d): %s", status, msg)
	}
	u.setFlash(w, r, f)
	http.Redirect(w, r, repoURL(rt.repo), http.StatusSeeOther)
	return nil
}

// maxAPIAnswer bounds the error body read back from the registry.
const maxAPIAnswer = 64 << 10

// apiDelete runs DELETE /v2/<repo>/manifests/<ref> through the registry
// in-process and returns its status and error message.
func (u *UI) apiDelete(r *http.Request, v visitor, repo, ref string) (int, string, error) {
	ctx := r.Context()
	if u.access != nil {
		// Set again for anonymous visitors too: whatever credentials the
		// browser's request carried must not decide the delete.
		ctx = u.access.WithSessionUser(ctx, v.user)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		return 0, "", fmt.Errorf("ui: build delete request: %w", err)
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	req.RequestURI = req.URL.RequestURI()
	for _, h := range []string{"X-Request-Id", "User-Agent"} {
		if val := r.Header.Get(h); val != "" {
			req.Header.Set(h, val)
		}
	}
	rec := &captured{header: http.Header{}}
	u.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.status, apiMessage(rec.body.String()), ctx.Err()
}

// apiMessage is the first error message of an OCI error body.
func apiMessage(body string) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && len(e.Errors) > 0 {
		return e.Errors[0].Message
	}
	return strings.TrimSpace(body)
}

// captured is the ResponseWriter of an in-process API call: the status
// and a bounded body.
type captured struct {
	header http.Header
	status int
	body   strings.Builder
}

func (c *captured) Header() http.Header { return c.header }

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if room := maxAPIAnswer - c.body.Len(); room > 0 {
		c.body.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
