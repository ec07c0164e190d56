package proxycache

import (
	"errors"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/registry"
	"github.com/stratus-registry/stratus/registry/content"
)

func testNames(t testing.TB, root bool) *names {
	t.Helper()
	n, err := newNames([]Upstream{
		{Prefix: "hub", URL: "https://registry-1.docker.io", Root: root},
		{Prefix: "ghcr", URL: "https://ghcr.io"},
		{Prefix: "local", URL: "http://127.0.0.1:5001"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		root      bool
		name, ns  string
		local     string
		mirrored  bool
		errCode   string
		notRouted bool
	}{
		{desc: "official image gets library/", name: "hub/alpine", local: "hub/library/alpine", mirrored: true},
		{desc: "user image kept", name: "hub/bitnami/redis", local: "hub/bitnami/redis", mirrored: true},
		{desc: "already library/", name: "hub/library/alpine", local: "hub/library/alpine", mirrored: true},
		{desc: "non-hub one component kept", name: "ghcr/foo", local: "ghcr/foo", mirrored: true},
		{desc: "non-hub path", name: "ghcr/org/app", local: "ghcr/org/app", mirrored: true},
		{desc: "prefix alone is not mirrored", name: "hub", local: "hub", mirrored: false},
		{desc: "ordinary repository", name: "team/app", local: "team/app", mirrored: false},
		{desc: "root maps unprefixed names", root: true, name: "alpine", local: "hub/library/alpine", mirrored: true},
		{desc: "root keeps user names", root: true, name: "library/alpine", local: "hub/library/alpine", mirrored: true},
		{desc: "root leaves other prefixes", root: true, name: "ghcr/org/app", local: "ghcr/org/app", mirrored: true},
		{desc: "ns docker.io", name: "library/alpine", ns: "docker.io", local: "hub/library/alpine", mirrored: true},
		{desc: "ns alias index.docker.io", name: "alpine", ns: "index.docker.io", local: "hub/library/alpine", mirrored: true},
		{desc: "ns alias registry-1 upper case", name: "alpine", ns: "Registry-1.Docker.IO", local: "hub/library/alpine", mirrored: true},
		{desc: "ns with :443", name: "org/app", ns: "ghcr.io:443", local: "ghcr/org/app", mirrored: true},
		{desc: "ns with prefix already in path", name: "ghcr/org/app", ns: "ghcr.io", local: "ghcr/org/app", mirrored: true},
		{desc: "ns with port", name: "x/y", ns: "127.0.0.1:5001", local: "local/x/y", mirrored: true},
		{desc: "unknown ns", name: "library/alpine", ns: "quay.io", errCode: registry.MirrorNameUnknown},
		{desc: "ns naming an address not configured", name: "a", ns: "169.254.169.254", errCode: registry.MirrorNameUnknown},
		{desc: "too long after prefixing", name: "hub/" + strings.Repeat("a", 250), errCode: registry.MirrorNameInvalid},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			local, mirrored, err := testNames(t, tc.root).route(tc.name, tc.ns)
			if tc.errCode != "" {
				var me *registry.MirrorError
				if !errors.As(err, &me) || me.Code != tc.errCode {
					t.Fatalf("route(%q, ns=%q) = %v, want code %s", tc.name, tc.ns, err, tc.errCode)
				}
				return
			}
			if err != nil || local != tc.local || mirrored != tc.mirrored {
				t.Fatalf("route(%q, ns=%q) = %q, %v, %v; want %q, %v", tc.name, tc.ns, local, mirrored, err, tc.local, tc.mirrored)
			}
		})
	}
}

func TestHostKey(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io": "docker.io", "index.docker.io": "docker.io", "registry-1.docker.io": "docker.io",
		"REGISTRY-1.DOCKER.IO:443": "docker.io", "ghcr.io": "ghcr.io", "127.0.0.1:5000": "127.0.0.1:5000",
		"evil.docker.io": "evil.docker.io",
	} {
		if got := hostKey(in); got != want {
			t.Errorf("hostKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	n := testNames(t, false)
	for _, tc := range []struct {
		local, prefix, path string
		ok                  bool
	}{
		{"hub/library/alpine", "hub", "library/alpine", true},
		{"ghcr/a", "ghcr", "a", true},
		{"other/a", "", "", false},
		{"hub", "", "", false},
	} {
		p, path, ok := n.split(tc.local)
		if ok != tc.ok || (ok && (p != tc.prefix || path != tc.path)) {
			t.Errorf("split(%q) = %q, %q, %v", tc.local, p, path, ok)
		}
	}
}

// FuzzRoute: any name and ns either map to a valid local repository under
// a configured prefix, or are refused with a MirrorError; never a panic,
// and an ns never routes to an upstream that is not configured.
func FuzzRoute(f *testing.F) {
	for _, s := range [][2]string{
		{"hub/alpine", ""}, {"alpine", "docker.io"}, {"library/alpine", "quay.io"}, {"ghcr/a/b", "ghcr.io"},
		{"", ""}, {"hub/", ""}, {"a//b", "docker.io"}, {"x", "127.0.0.1:5001"}, {"ghcr/x", "INDEX.DOCKER.IO:443"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	nRoot, nPlain := testNames(f, true), testNames(f, false)
	f.Fuzz(func(t *testing.T, name, ns string, root bool) {
		n := nPlain
		if root {
			n = nRoot
		}
		local, mirrored, err := n.route(name, ns)
		if err != nil {
			var me *registry.MirrorError
			if !errors.As(err, &me) {
				t.Fatalf("route(%q, %q): error %v is not a MirrorError", name, ns, err)
			}
			return
		}
		if !mirrored {
			if ns != "" || local != name || root {
				t.Fatalf("route(%q, %q) = %q unmirrored", name, ns, local)
			}
			return
		}
		if !content.ValidName(local) {
			t.Fatalf("route(%q, %q) = invalid local name %q", name, ns, local)
		}
		prefix, _, ok := n.split(local)
		if !ok {
			t.Fatalf("route(%q, %q) = %q, under no configured prefix", name, ns, local)
		}
		if ns != "" && n.byHost[hostKey(ns)].prefix != prefix {
			t.Fatalf("ns %q routed to %s", ns, prefix)
		}
	})
}
