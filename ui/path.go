package ui

import (
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/registry/content"
)

// page is what a UI path names.
type page int

const (
	pageNone page = iota
	pageRepos
	pageRepo
	pageManifest
	pageTag
	pageReferrers
	pageDelete
	pageStorage
	pageStatus
	pageLogin
	pageLogout
	pageStatic
)

// uiRoute is a parsed UI path.
type uiRoute struct {
	page   page
	repo   string
	tag    string
	digest digest.Digest
	file   string // a static asset's name
}

// Prefix is where the UI is mounted.
const Prefix = "/ui/"

// parsePath parses an escaped request path. Repository names contain
// slashes, so "/-/" (never part of a valid name: a component cannot be a
// lone "-") separates the name from the rest. It works on the escaped
// path and accepts only valid names, tags and digests, so an encoded "/"
// or ".." cannot reach a store key.
func parsePath(escaped string) uiRoute {
	rest, ok := strings.CutPrefix(escaped, Prefix)
	if !ok {
		return uiRoute{}
	}
	switch rest {
	case "":
		return uiRoute{page: pageRepos}
	case "storage":
		return uiRoute{page: pageStorage}
	case "status":
		return uiRoute{page: pageStatus}
	case "login":
		return uiRoute{page: pageLogin}
	case "logout":
		return uiRoute{page: pageLogout}
	}
	if f, ok := strings.CutPrefix(rest, "static/"); ok {
		if validAssetName(f) {
			return uiRoute{page: pageStatic, file: f}
		}
		return uiRoute{}
	}
	rest, ok = strings.CutPrefix(rest, "r/")
	if !ok {
		return uiRoute{}
	}
	if name, ok := strings.CutSuffix(rest, "/"); ok && !strings.Contains(name, "/-/") && !strings.HasSuffix(name, "/-") {
		return repoRoute(uiRoute{page: pageRepo}, name)
	}
	name, sub, ok := strings.Cut(rest, "/-/")
	if !ok {
		return uiRoute{}
	}
	kind, arg, _ := strings.Cut(sub, "/")
	switch kind {
	case "manifest", "referrers":
		d, err := content.ParseDigest(arg)
		if err != nil {
			return uiRoute{}
		}
		p := pageManifest
		if kind == "referrers" {
			p = pageReferrers
		}
		return repoRoute(uiRoute{page: p, digest: d}, name)
	case "tag":
		if !content.ValidTag(arg) {
			return uiRoute{}
		}
		return repoRoute(uiRoute{page: pageTag, tag: arg}, name)
	case "delete":
		if arg != "" || strings.HasSuffix(sub, "/") {
			return uiRoute{}
		}
		return repoRoute(uiRoute{page: pageDelete}, name)
	}
	return uiRoute{}
}

func repoRoute(rt uiRoute, name string) uiRoute {
	if !content.ValidName(name) {
		return uiRoute{}
	}
	rt.repo = name
	return rt
}

// validAssetName: a flat name of the embedded static folder.
func validAssetName(f string) bool {
	if f == "" || len(f) > 64 || strings.HasPrefix(f, ".") {
		return false
	}
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// The links pages build. Names, tags and digests are valid, so they need
// no escaping in a path; html/template escapes them in attributes.

func repoURL(repo string) string { return Prefix + "r/" + repo + "/" }

func manifestURL(repo string, d digest.Digest) string {
	return Prefix + "r/" + repo + "/-/manifest/" + d.String()
}

func referrersURL(repo string, d digest.Digest) string {
	return Prefix + "r/" + repo + "/-/referrers/" + d.String()
}

func deleteURL(repo string) string { return Prefix + "r/" + repo + "/-/delete" }
