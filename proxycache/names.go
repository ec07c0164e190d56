package proxycache

import (
	"fmt"
	"strings"

	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/content"
)

// dockerHubHosts are the names of Docker Hub's registry: all one upstream.
var dockerHubHosts = map[string]bool{
	"docker.io":            true,
	"index.docker.io":      true,
	"registry-1.docker.io": true,
}

// dockerHubKey is the one lookup key of every Docker Hub alias.
const dockerHubKey = "docker.io"

// hostKey is the lookup key of an upstream host: lower case, Docker Hub's
// aliases folded into one, the default HTTPS port dropped.
func hostKey(host string) string {
	h := strings.TrimSuffix(strings.ToLower(host), ":443")
	if dockerHubHosts[h] {
		return dockerHubKey
	}
	return h
}

// target is the upstream side of a mirrored repository.
type target struct {
	prefix    string
	dockerHub bool
}

// names maps request names to local repositories and back. It is built
// once from the configuration and only read afterwards.
type names struct {
	byPrefix map[string]target
	// byHost is keyed by hostKey: the ?ns= lookup. Nothing in it is ever
	// dialled; the upstream's configured URL is.
	byHost map[string]target
	root   *target
}

func newNames(ups []Upstream) (*names, error) {
	n := &names{byPrefix: map[string]target{}, byHost: map[string]target{}}
	for _, u := range ups {
		host, err := parseUpstreamURL(u.URL)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: url %w", u.Prefix, err)
		}
		key := hostKey(host)
		t := target{prefix: u.Prefix, dockerHub: u.DockerHub || key == dockerHubKey}
		n.byPrefix[u.Prefix] = t
		n.byHost[key] = t
		if u.Root {
			n.root = &t
		}
	}
	return n, nil
}

// route maps a requested repository name, with the request's ?ns= value
// (empty if none), to its local repository. A name under no prefix, with
// no ns and no root upstream, is not mirrored.
//
// An ns that names no configured upstream is NAME_UNKNOWN: containerd
// then falls back to its next host, which is what a mirror that does not
// carry a registry should make it do.
func (n *names) route(name, ns string) (local string, mirrored bool, err error) {
	var t target
	rest := name
	switch {
	case ns != "":
		var ok bool
		if t, ok = n.byHost[hostKey(ns)]; !ok {
			return "", false, &registry.MirrorError{Code: registry.MirrorNameUnknown,
				Message: fmt.Sprintf("ns=%q is not an upstream this registry mirrors", ns)}
		}
		// A hosts.toml entry with a path may already add the prefix.
		rest = strings.TrimPrefix(name, t.prefix+"/")
	default:
		first, after, _ := strings.Cut(name, "/")
		if p, ok := n.byPrefix[first]; ok && after != "" {
			t, rest = p, after
		} else if n.root != nil {
			t = *n.root
		} else {
			return name, false, nil
		}
	}
	local = t.prefix + "/" + t.upstreamPath(rest)
	if !content.ValidName(local) {
		return "", false, &registry.MirrorError{Code: registry.MirrorNameInvalid,
			Message: fmt.Sprintf("repository %q maps to %q in the mirror, which is not a valid repository name", name, local)}
	}
	return local, true, nil
}

// upstreamPath is the upstream repository of a name below the prefix:
// Docker Hub keeps official images under library/.
func (t target) upstreamPath(rest string) string {
	if t.dockerHub && !strings.Contains(rest, "/") {
		return "library/" + rest
	}
	return rest
}

// split returns the prefix and upstream repository of a local mirrored
// repository name.
func (n *names) split(local string) (prefix, path string, ok bool) {
	prefix, path, ok = strings.Cut(local, "/")
	if !ok || path == "" {
		return "", "", false
	}
	_, known := n.byPrefix[prefix]
	return prefix, path, known
}
