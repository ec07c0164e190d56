package deploytest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Stage is one FROM ... of the Dockerfile with its instructions.
type Stage struct {
	From         string
	Instructions []*parser.Node
}

// Dockerfile parses the root Dockerfile with BuildKit's parser (the one
// `docker build` uses) and splits it into stages.
func Dockerfile(t testing.TB) []Stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ModuleRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	var stages []Stage
	for _, n := range res.AST.Children {
		// Keywords are case-insensitive; compare them in lower case.
		n.Value = strings.ToLower(n.Value)
		if n.Value == "from" {
			stages = append(stages, Stage{From: n.Next.Value})
			continue
		}
		if len(stages) == 0 {
			if n.Value != "arg" {
				t.Fatalf("line %d: %s before the first FROM", n.StartLine, n.Value)
			}
			continue
		}
		stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, n)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a runtime stage", len(stages))
	}
	return stages
}

// Args is the instruction's arguments (the nodes after the keyword).
func Args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// Last is the stage's last instruction with the keyword, or nil.
func (s Stage) Last(keyword string) *parser.Node {
	var found *parser.Node
	for _, n := range s.Instructions {
		if n.Value == keyword {
			found = n
		}
	}
	return found
}

// GoBuild is the go build of the Dockerfile's builder stage, with the ARGs
// expanded: its environment assignments and its flags (without -o and the
// package).
type GoBuild struct {
	Env, Flags []string
}

// DockerGoBuild finds the RUN of the builder stage that runs go build and
// splits it into words with BuildKit's shell lexer, as BuildKit expands
// it: VERSION is the given version, TARGETOS/TARGETARCH this machine's.
func DockerGoBuild(t testing.TB, stages []Stage, version string) GoBuild {
	t.Helper()
	for _, s := range stages[:len(stages)-1] {
		for _, n := range s.Instructions {
			if n.Value != "run" || !strings.Contains(n.Next.Value, "go build") {
				continue
			}
			env := shell.EnvsFromSlice([]string{"VERSION=" + version, "TARGETOS=" + runtime.GOOS, "TARGETARCH=" + runtime.GOARCH})
			words, err := shell.NewLex('\\').ProcessWords(n.Next.Value, env)
			if err != nil {
				t.Fatalf("line %d: %v", n.StartLine, err)
			}
			var b GoBuild
			for len(words) > 0 && strings.Contains(words[0], "=") {
				b.Env, words = append(b.Env, words[0]), words[1:]
			}
			if len(words) < 3 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("line %d: want one `[VAR=value ...] go build ...` command, got %q", n.StartLine, words)
			}
			for i := 2; i < len(words)-1; i++ { // the last word is the package
				if words[i] == "-o" {
					i++
					continue
				}
				b.Flags = append(b.Flags, words[i])
			}
			return b
		}
	}
	t.Fatal("no RUN ... go build in a builder stage")
	return GoBuild{}
}

// BuildLikeDockerfile builds stratus with the environment and flags of the
// Dockerfile's go build, stamped with version. Every deployment test uses
// this one binary, so they share one set of build-cache entries (-trimpath
// compiles every package anew).
func BuildLikeDockerfile(t testing.TB, version string) string {
	t.Helper()
	b := DockerGoBuild(t, Dockerfile(t), version)
	return Build(t, b.Env, b.Flags...)
}
