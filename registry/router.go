package registry

import "strings"

// route is what a request path resolves to.
type route struct {
	kind  routeKind
	name  string // repository
	arg   string // digest, reference or upload id, still unparsed
	allow string // methods allowed on this route, for 405 answers
	// mirrored: name is a pull-through mirror's local repository.
	mirrored bool
}

type routeKind int

const (
	routeNone routeKind = iota
	routeBase
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUploadStart
	routeUpload
	routeReferrers
)

// parseRoute matches a /v2/ path from the right, because repository names
// contain slashes and may even contain components such as "blobs" or
// "manifests" ("a/blobs/blobs/sha256:..." is the blob of repository
// "a/blobs"). It works on the escaped path: names never contain escapes, so
// any '%' (an encoded "/" or "." meant to smuggle "..") makes the name
// invalid instead of being decoded into something else.
func parseRoute(escapedPath string) route {
	rest, ok := strings.CutPrefix(escapedPath, "/v2")
	if !ok {
		return route{}
	}
	if rest == "" || rest == "/" {
		return route{kind: routeBase, allow: "GET, HEAD"}
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return route{}
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog, allow: "GET"}
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	at := func(i int) string { return seg[n-i] } // at(1) is the last segment
	name := func(drop int) string { return strings.Join(seg[:n-drop], "/") }
	switch {
	case n >= 3 && at(3) == "blobs" && at(2) == "uploads" && at(1) == "":
		return route{kind: routeUploadStart, name: name(3), allow: "POST"}
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		return route{kind: routeUploadStart, name: name(2), allow: "POST"}
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		return route{kind: routeUpload, name: name(3), arg: at(1), allow: "GET, PATCH, PUT, DELETE"}
	case n >= 3 && at(2) == "blobs":
		return route{kind: routeBlob, name: name(2), arg: at(1), allow: "GET, HEAD, DELETE"}
	case n >= 3 && at(2) == "manifests":
		return route{kind: routeManifest, name: name(2), arg: at(1), allow: "GET, HEAD, PUT, DELETE"}
	case n >= 3 && at(2) == "tags" && at(1) == "list":
		return route{kind: routeTags, name: name(2), allow: "GET"}
	case n >= 3 && at(2) == "referrers":
		return route{kind: routeReferrers, name: name(2), arg: at(1), allow: "GET"}
	}
	return route{}
}

// methodAllowed reports whether method is in the route's allow list. HEAD is
// listed explicitly where it is meaningful.
func (rt route) methodAllowed(method string) bool {
	for _, m := range strings.Split(rt.allow, ", ") {
		if m == method {
			return true
		}
	}
	return false
}

func errMethod(rt route, method string) *apiError {
	return newError(codeUnsupported, "method %s is not allowed here", method).
		withHeader("Allow", rt.allow)
}
