package integration

import (
	"io"
	"path/filepath"
	"testing"
)

// podmanSandbox runs podman with its own storage, run root and auth file,
// so nothing of the machine's podman setup is read or changed. tlsArgs
// (a --cert-dir, or --tls-verify=false) go with every registry command.
type podmanSandbox struct {
	t        *testing.T
	global   []string
	registry []string
}

func newPodman(t *testing.T, tlsArgs ...string) *podmanSandbox {
	t.Helper()
	dir := t.TempDir()
	return &podmanSandbox{
		t: t,
		global: []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
			"--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs"},
		registry: append([]string{"--authfile", filepath.Join(dir, "auth.json")}, tlsArgs...),
	}
}

// login signs user in to host with the password read from stdin.
func (p *podmanSandbox) login(stdin io.Reader, host, user string) {
	p.t.Helper()
	args := append(append(append([]string{}, p.global...), "login"), p.registry...)
	runStdin(p.t, nil, stdin, "podman", append(args, "-u", user, "--password-stdin", host)...)
}

// copyTag pulls from, tags it as to and pushes to.
func (p *podmanSandbox) copyTag(from, to string) {
	p.t.Helper()
	p.do("pull", from)
	run(p.t, nil, "podman", append(append([]string{}, p.global...), "tag", from, to)...)
	p.do("push", to)
}

func (p *podmanSandbox) do(verb, image string) {
	p.t.Helper()
	args := append(append(append([]string{}, p.global...), verb), p.registry...)
	run(p.t, nil, "podman", append(args, image)...)
}
