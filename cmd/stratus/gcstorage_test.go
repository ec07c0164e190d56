package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/stratus-registry/stratus/internal/bytesize"
	"github.com/stratus-registry/stratus/registry"
)

func TestPrintStorage(t *testing.T) {
	many := &registry.GCStorage{UniqueBytes: 5 << 20, OtherRepositories: 3, OtherBytes: 300}
	for i := range storageRows + 2 {
		many.Repositories = append(many.Repositories, registry.GCRepoStorage{Repository: fmt.Sprintf("repo-%02d", i), Bytes: 10, Manifests: 1, Blobs: 2})
	}
	for _, tc := range []struct {
		name    string
		storage *registry.GCStorage
		want    []string
		notWant []string
	}{{
		name:    "not recorded",
		storage: nil,
		want:    []string{"storage: not recorded"},
	}, {
		name:    "empty registry",
		storage: &registry.GCStorage{},
		want:    []string{"storage: 0 bytes live (0 B)", "0 repositories"},
		notWant: []string{"repository bytes"},
	}, {
		name: "repositories with their exclusive share",
		storage: &registry.GCStorage{UniqueBytes: 3000, Repositories: []registry.GCRepoStorage{
			{Repository: "team/app", Bytes: 2500, ExclusiveBytes: 2000, Manifests: 2, Blobs: 4},
			{Repository: "lib", Bytes: 1000, ExclusiveBytes: 500, Manifests: 1, Blobs: 2},
		}},
		want: []string{
			"storage: 3000 bytes live (2.9 KiB)", "2 repositories",
			"team/app 2500 (2.4 KiB) 2000 (2.0 KiB) 2 4",
			"lib 1000 (1000 B) 500 (500 B) 1 2",
		},
		notWant: []string{"more repositories"},
	}, {
		name:    "rows beyond the listing and the report's bound are summed",
		storage: many,
		want:    []string{"25 repositories", "repo-19", "and 5 more repositories: 320 bytes"},
		notWant: []string{"repo-20"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			printStorage(&b, tc.storage)
			out := squash(b.String())
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// squash folds runs of white space to one space: column widths are the
// tabwriter's business.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestGCStatusStorage pushes two images sharing a layer into a filesystem
// root, runs `stratus gc run` and checks what `stratus gc status` prints,
// as text and as JSON, against the sizes pushed.
func TestGCStatusStorage(t *testing.T) {
	root := t.TempDir()
	sets := []string{"storage.filesystem.root=" + root}
	cfg, err := loadConfig("", nil, sets)
	if err != nil {
		t.Fatal(err)
	}
	reg, _, _, closeAll, err := openRegistry(context.Background(), cfg, slog.New(slog.DiscardHandler), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	shared := bytes.Repeat([]byte("s"), 3000)
	appSize := pushTestImage(t, srv.URL, "team/app", []byte(`{"os":"linux","app":1}`), shared, bytes.Repeat([]byte("a"), 5000))
	libSize := pushTestImage(t, srv.URL, "lib", []byte(`{"os":"linux","lib":1}`), shared)
	srv.Close()
	closeAll()

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := newApp(&out, &errOut, nil).RunContext(context.Background(), append([]string{"stratus", "gc"}, append(args, "--root", root)...)); err != nil {
			t.Fatalf("gc %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	run("run")
	unique := appSize + libSize - int64(len(shared))
	human := run("status")
	for _, w := range []string{
		fmt.Sprintf("storage: %d bytes live", unique),
		fmt.Sprintf("team/app %d (%s) %d (%s)", appSize, bytesize.Format(appSize), appSize-int64(len(shared)), bytesize.Format(appSize-int64(len(shared)))),
		fmt.Sprintf("lib %d (%s) %d (%s)", libSize, bytesize.Format(libSize), libSize-int64(len(shared)), bytesize.Format(libSize-int64(len(shared)))),
	} {
		if !strings.Contains(squash(human), w) {
			t.Errorf("gc status lacks %q:\n%s", w, human)
		}
	}
	var rep registry.GCReport
	if err := json.Unmarshal([]byte(run("status", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	want := registry.GCStorage{UniqueBytes: unique, Repositories: []registry.GCRepoStorage{
		{Repository: "team/app", Bytes: appSize, ExclusiveBytes: appSize - int64(len(shared)), Manifests: 1, Blobs: 3},
		{Repository: "lib", Bytes: libSize, ExclusiveBytes: libSize - int64(len(shared)), Manifests: 1, Blobs: 2},
	}}
	if rep.Storage == nil || !reflect.DeepEqual(*rep.Storage, want) {
		t.Errorf("gc status --json storage = %+v, want %+v", rep.Storage, want)
	}
}

// pushTestImage pushes a config and layers as a tagged image and returns
// the bytes it pushed: manifest, config and layers.
func pushTestImage(t *testing.T, base, repo string, config []byte, layers ...[]byte) int64 {
	t.Helper()
	do := func(method, path, contentType string, body []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, msg)
		}
	}
	digestOf := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	total := int64(len(config))
	do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(config), "", config)
	var descs []string
	for _, l := range layers {
		do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(l), "", l)
		descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, digestOf(l), len(l)))
		total += int64(len(l))
	}
	const mt = "application/vnd.oci.image.manifest.v1+json"
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}`,
		mt, digestOf(config), len(config), strings.Join(descs, ",")))
	do("PUT", "/v2/"+repo+"/manifests/v1", mt, m)
	return total + int64(len(m))
}
