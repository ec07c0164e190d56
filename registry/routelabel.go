package registry

import "net/url"

// Route templates, the bounded set of values RouteInfo returns for metric
// labels and access logs.
const (
	RouteBase        = "/v2/"
	RouteCatalog     = "/v2/_catalog"
	RouteTags        = "/v2/{name}/tags/list"
	RouteManifest    = "/v2/{name}/manifests/{reference}"
	RouteBlob        = "/v2/{name}/blobs/{digest}"
	RouteUploadStart = "/v2/{name}/blobs/uploads/"
	RouteUpload      = "/v2/{name}/blobs/uploads/{uuid}"
	RouteReferrers   = "/v2/{name}/referrers/{digest}"
)

var routeTemplates = map[routeKind]string{
	routeBase:        RouteBase,
	routeCatalog:     RouteCatalog,
	routeTags:        RouteTags,
	routeManifest:    RouteManifest,
	routeBlob:        RouteBlob,
	routeUploadStart: RouteUploadStart,
	routeUpload:      RouteUpload,
	routeReferrers:   RouteReferrers,
}

// RouteInfo resolves an escaped request path (r.URL.EscapedPath()) with the
// registry's own router, for logs and metrics. template is one of the
// Route constants, or "" for a path the registry does not serve. repository
// is set only when it is a valid repository name; reference is the digest
// or tag of manifest, blob and referrer routes (never an upload id, which
// grants write access to the upload).
func RouteInfo(escapedPath string) (template, repository, reference string) {
	rt := parseRoute(escapedPath)
	template = routeTemplates[rt.kind]
	if template == "" {
		return "", "", ""
	}
	if rt.name != "" && validName(rt.name) {
		repository = rt.name
	}
	switch rt.kind {
	case routeManifest, routeBlob, routeReferrers:
		if ref, err := url.PathUnescape(rt.arg); err == nil && validReference(ref) {
			reference = ref
		}
	}
	return template, repository, reference
}

// validReference accepts what a tag or a digest may look like, so that a
// log line never carries arbitrary client bytes under the reference key.
func validReference(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == ':' || c == '+' || c == '=') {
			return false
		}
	}
	return true
}
