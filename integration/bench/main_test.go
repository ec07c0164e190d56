package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/internal/launch"
)

// TestShortRun runs the whole benchmark in its -short size, so that the
// harness cannot rot: every backend, contender and workload must produce
// rows, and no request may fail. It measures nothing worth reading.
func TestShortRun(t *testing.T) {
	_, err := launch.Find("registry", referenceInstall)
	launch.Require(t, err)
	backends := []string{"filesystem", "minio"}
	if _, err := launch.Find("minio", minioInstall); err != nil {
		if launch.InCI() {
			t.Fatal(err)
		}
		t.Logf("%v\nfilesystem backend only", err)
		backends = backends[:1]
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := run(ctx, config{
		Short:    true,
		Out:      out,
		Backends: backends,
		Timeout:  7 * time.Minute,
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if rep != nil {
		t.Log("\n" + rep.text())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Errors {
		// Stratus must not fail a request; the baseline is another
		// project's, and a timeout of it on a loaded CI machine says
		// nothing about this one.
		report := t.Errorf
		if !strings.HasPrefix(e.Contender, "stratus") {
			report = t.Logf
		}
		report("%s / %s / %s round %d: %s", e.Backend, e.Task, e.Contender, e.Round, e.Error)
	}

	var got Report
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| backend | workload |") {
		t.Errorf("results.md has no table:\n%s", md)
	}

	measured := make(map[[3]string]bool)
	for _, r := range got.Rows {
		if r.Note == "" && r.Value > 0 {
			measured[[3]string{r.Backend, workloadKind(r.Workload), r.Contender}] = true
		}
	}
	kinds := []string{"push 1 MiB", "pull 1 MiB", "push 16 MiB chunked", "push 16 MiB monolithic", "pull 16 MiB",
		"commit latency 1 MiB", "commit latency 16 MiB", "peak RSS", "manifest PUT", "manifest GET", "tags list", "_catalog"}
	for _, backend := range backends {
		for _, contender := range []string{"stratus-1", "stratus-2rr", "reference"} {
			for _, k := range kinds {
				if !measured[[3]string{backend, k, contender}] {
					report := t.Errorf
					if contender == "reference" {
						report = t.Logf
					}
					report("%s / %s: no %q row with a value", backend, contender, k)
				}
			}
		}
		for _, k := range []string{"push 1 MiB", "pull 1 MiB", "push 16 MiB chunked", "pull 16 MiB"} {
			if !measured[[3]string{backend, k, "direct"}] {
				t.Errorf("%s: no direct-to-backend %q row", backend, k)
			}
		}
		for _, contender := range []string{"stratus-1", "stratus-2rr"} {
			if !measured[[3]string{backend, "referrers", contender}] {
				t.Errorf("%s / %s: no referrers row with a value", backend, contender)
			}
		}
		fresh := []string{"peak RSS, one"}
		if backend == "minio" {
			fresh = append(fresh, "peak RSS, 24 concurrent", "push 24 x 16 MiB", "MinIO growth")
		}
		for _, k := range fresh {
			if !measured[[3]string{backend, k, "stratus-1"}] {
				t.Errorf("%s / stratus-1: no %q row with a value", backend, k)
			}
		}
	}
}

// workloadKind maps a row's workload name onto the prefix the test checks.
func workloadKind(name string) string {
	for _, k := range []string{"push 1 MiB", "pull 1 MiB", "push 16 MiB chunked", "push 16 MiB monolithic", "pull 16 MiB",
		"commit latency 1 MiB", "commit latency 16 MiB", "peak RSS, one", "peak RSS, 24 concurrent", "peak RSS", "push 24 x 16 MiB",
		"MinIO growth", "manifest PUT", "manifest GET", "tags list", "_catalog", "referrers"} {
		if strings.HasPrefix(name, k) {
			return k
		}
	}
	return name
}

// testWriter sends the benchmark's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestGenerator checks that generated blobs hash to their digest, that
// names give distinct digests, and that sections read the same bytes.
func TestGenerator(t *testing.T) {
	g := newGenerator(1)
	for _, size := range []int64{tailLen, 1000, patternLen - 1, patternLen + 7, 3*patternLen + 5} {
		a, err := g.newBlob(size, "a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := g.newBlob(size, "b")
		if err != nil {
			t.Fatal(err)
		}
		if a.Digest == b.Digest {
			t.Errorf("size %d: two names, one digest", size)
		}
		h := newSHA()
		var whole []byte
		buf := make([]byte, 7777)
		r := a.Reader()
		for {
			n, err := r.Read(buf)
			h.Write(buf[:n])
			whole = append(whole, buf[:n]...)
			if err != nil {
				break
			}
		}
		if int64(len(whole)) != size {
			t.Fatalf("size %d: read %d bytes", size, len(whole))
		}
		if h.digest() != a.Digest {
			t.Errorf("size %d: content hashes to %s, blob says %s", size, h.digest(), a.Digest)
		}
		off := size / 3
		part := make([]byte, size-off)
		if _, err := a.ReadAt(part, off); err != nil {
			t.Fatal(err)
		}
		if string(part) != string(whole[off:]) {
			t.Errorf("size %d: ReadAt(%d) differs from the stream", size, off)
		}
	}
	if _, err := g.newBlob(tailLen-1, "x"); err == nil {
		t.Error("a blob shorter than its tail was accepted")
	}
}
