package deploy

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/deploy/deploytest"
)

func TestDockerfile(t *testing.T) {
	stages := deploytest.Dockerfile(t)
	final := stages[len(stages)-1]
	t.Run("final stage has no shell", func(t *testing.T) {
		if !strings.HasPrefix(final.From, "gcr.io/distroless/static") && final.From != "scratch" {
			t.Errorf("final stage FROM %s, want distroless/static or scratch", final.From)
		}
		if n := final.Last("run"); n != nil {
			t.Errorf("line %d: RUN in the final stage, which has no shell", n.StartLine)
		}
	})
	t.Run("non-root USER", func(t *testing.T) {
		n := final.Last("user")
		if n == nil {
			t.Fatal("no USER in the final stage: the image would run as root")
		}
		user, _, _ := strings.Cut(deploytest.Args(n)[0], ":")
		// Numeric, or Kubernetes' runAsNonRoot cannot verify it.
		if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
			t.Errorf("USER %s, want a numeric non-zero uid", deploytest.Args(n)[0])
		}
	})
	t.Run("ENTRYPOINT stratus serve", func(t *testing.T) {
		n := final.Last("entrypoint")
		if n == nil || !n.Attributes["json"] {
			t.Fatal("want ENTRYPOINT in exec (JSON) form: no shell to run it")
		}
		if a := deploytest.Args(n); len(a) != 2 || filepath.Base(a[0]) != "stratus" || a[1] != "serve" {
			t.Errorf("ENTRYPOINT %q, want [.../stratus serve]", a)
		}
	})
	t.Run("EXPOSE 5000", func(t *testing.T) {
		exposed := false
		for _, n := range final.Instructions {
			if n.Value == "expose" {
				for _, p := range deploytest.Args(n) {
					exposed = exposed || p == "5000" || p == "5000/tcp"
				}
			}
		}
		if !exposed {
			t.Error("port 5000 not exposed")
		}
	})
	t.Run("no ADD from URLs", func(t *testing.T) {
		for _, s := range stages {
			for _, n := range s.Instructions {
				if n.Value != "add" {
					continue
				}
				a := deploytest.Args(n)
				for _, src := range a[:len(a)-1] {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						t.Errorf("line %d: ADD %s fetches from the network; download in a RUN with a checksum", n.StartLine, src)
					}
				}
			}
		}
	})
	t.Run("static trimmed build", func(t *testing.T) {
		b := deploytest.DockerGoBuild(t, stages, "test")
		if !contains(b.Env, "CGO_ENABLED=0") {
			t.Errorf("go build environment %q lacks CGO_ENABLED=0", b.Env)
		}
		if !contains(b.Flags, "-trimpath") {
			t.Errorf("go build flags %q lack -trimpath", b.Flags)
		}
		if !strings.Contains(strings.Join(b.Flags, " "), "-X main.version=test") {
			t.Errorf("go build flags %q do not stamp main.version from ARG VERSION", b.Flags)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
