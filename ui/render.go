package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/internal/bytesize"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the parsed templates, one set per page (each with the layout).
type pages struct {
	set map[string]*template.Template
}

var funcs = template.FuncMap{
	"bytes":        bytesize.Format,
	"short":        shortDigest,
	"when":         func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"repoURL":      repoURL,
	"manifestURL":  manifestURL,
	"referrersURL": referrersURL,
	"deleteURL":    deleteURL,
	"add":          func(a, b int) int { return a + b },
}

func parsePages() (*pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{set: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", n, err)
		}
		p.set[name] = t
	}
	return p, nil
}

// layout is what the shared frame shows around every page.
type layout struct {
	Title  string
	User   string
	AuthOn bool
	CSRF   string
	Flash  *flash
	Body   any
}

// render executes a page into a buffer first, so a template error never
// leaves a half-written page with a 200.
func (u *UI) render(w http.ResponseWriter, r *http.Request, v visitor, status int, name, title string, body any) {
	u.renderWith(w, r, v, status, name, title, body, nil)
}

// renderWith renders with a flash of this response (f), or else the one a
// redirect left in the flash cookie.
func (u *UI) renderWith(w http.ResponseWriter, r *http.Request, v visitor, status int, name, title string, body any, f *flash) {
	t, ok := u.pages.set[name]
	if !ok {
		u.logger.Error("ui: no such template", "template", name)
		http.Error(w, "page unavailable", http.StatusServiceUnavailable)
		return
	}
	ensureBinding(w, r, &v)
	if f == nil {
		f = u.takeFlash(w, r)
	}
	data := layout{Title: title, User: v.user, AuthOn: u.access != nil, CSRF: u.sessions.csrf(v.binding),
		Flash: f, Body: body}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		u.logger.Error("ui: render failed", "template", name, "err", err)
		http.Error(w, "page unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// static serves the embedded assets; they change only with the binary.
func (u *UI) static(w http.ResponseWriter, r *http.Request, rt uiRoute, v visitor) error {
	b, err := staticFS.ReadFile("static/" + rt.file)
	if err != nil {
		return errNotFound("no such asset")
	}
	ct := mime.TypeByExtension(path.Ext(rt.file))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, rt.file, time.Time{}, bytes.NewReader(b))
	return nil
}

func shortDigest(d digest.Digest) string {
	enc := d.Encoded()
	if len(enc) > 12 {
		enc = enc[:12]
	}
	return d.Algorithm().String() + ":" + enc
}
