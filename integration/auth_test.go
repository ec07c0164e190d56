package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	orasremote "oras.land/oras-go/v2/registry/remote"
	orasauth "oras.land/oras-go/v2/registry/remote/auth"
)

// ggcrOpts are go-containerregistry options for user ("" anonymous)
// over the test CA.
func ggcrOpts(ca *testCA, user string) []remote.Option {
	var a authn.Authenticator = authn.Anonymous
	if user != "" {
		a = &authn.Basic{Username: user, Password: authUsers[user]}
	}
	return []remote.Option{remote.WithAuth(a), remote.WithTransport(ca.transport())}
}

func tlsRef(t *testing.T, srv *server, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(srv.Addr + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func seedImage(t *testing.T, ca *testCA, srv *server, repo, user string) v1.Image {
	t.Helper()
	img, err := random.Image(64*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tlsRef(t, srv, repo), img, ggcrOpts(ca, user)...); err != nil {
		t.Fatalf("%s pushes %s: %v", user, repo, err)
	}
	return img
}

// statusOf is the HTTP status a go-containerregistry error carries.
func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// TestAuthLibrariesAndOrganisation: go-containerregistry and oras-go go
// through the Basic challenge of a TLS + htpasswd server, and the
// organisation policy holds: anonymous pull of public, no anonymous push,
// members push, a non-member gets the answer of a missing repository, and
// the catalog is filtered.
func TestAuthLibrariesAndOrganisation(t *testing.T) {
	s := newAuthSetup(t, orgPolicyYAML)
	srv := s.start(t)
	ca := s.ca
	img := seedImage(t, ca, srv, "team-a/app:v1", "alice")
	want, _ := img.Digest()
	seedImage(t, ca, srv, "public/tool:v1", "alice")

	t.Run("member pulls", func(t *testing.T) {
		got, err := remote.Image(tlsRef(t, srv, "team-a/app:v1"), ggcrOpts(ca, "bob")...)
		if err != nil {
			t.Fatal(err)
		}
		layersEqual(t, img, got)
	})
	t.Run("anonymous pull of public", func(t *testing.T) {
		if _, err := remote.Image(tlsRef(t, srv, "public/tool:v1"), ggcrOpts(ca, "")...); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("anonymous push refused", func(t *testing.T) {
		err := remote.Write(tlsRef(t, srv, "public/tool:anon"), img, ggcrOpts(ca, "")...)
		if statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("anonymous push: %v, want 401", err)
		}
	})
	t.Run("wrong password refused", func(t *testing.T) {
		opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "alice", Password: "nope"}), remote.WithTransport(ca.transport())}
		if _, err := remote.Head(tlsRef(t, srv, "public/tool:v1"), opts...); statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("wrong password: %v, want 401", err)
		}
	})
	t.Run("non-member sees a missing repository", func(t *testing.T) {
		if err := remote.Write(tlsRef(t, srv, "team-a/app:carol"), img, ggcrOpts(ca, "carol")...); statusOf(err) != http.StatusForbidden {
			t.Fatalf("carol pushes to team-a: %v, want 403", err)
		}
		get := func(repo string) (int, http.Header, []byte) {
			req, _ := http.NewRequest("GET", "https://"+srv.Addr+"/v2/"+repo+"/manifests/"+want.String(), nil)
			req.SetBasicAuth("carol", authUsers["carol"])
			resp, err := ca.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			resp.Header.Del("Date")
			resp.Header.Del("X-Request-Id")
			return resp.StatusCode, resp.Header, bytes.ReplaceAll(body, []byte(repo), []byte("REPO"))
		}
		// Both names have the same length, so with the name replaced the
		// answers match byte for byte, Content-Length included.
		s1, h1, b1 := get("team-a/app")
		s2, h2, b2 := get("team-a/zzz")
		if s1 != http.StatusForbidden || s1 != s2 || !bytes.Equal(b1, b2) || !equalHeaders(h1, h2) {
			t.Fatalf("existing: %d %v %s\nmissing: %d %v %s", s1, h1, b1, s2, h2, b2)
		}
	})
	t.Run("catalog filtered", func(t *testing.T) {
		seedImage(t, ca, srv, "carol/own:v1", "carol")
		repos, err := remote.Catalog(context.Background(), tlsRef(t, srv, "x").Context().Registry, ggcrOpts(ca, "carol")...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(repos, ",") != "carol/own,public/tool" {
			t.Fatalf("carol's catalog: %v", repos)
		}
	})
	t.Run("oras-go", func(t *testing.T) {
		repo, err := orasremote.NewRepository(srv.Addr + "/team-a/oras")
		if err != nil {
			t.Fatal(err)
		}
		repo.Client = &orasauth.Client{
			Client:     ca.client(),
			Credential: orasauth.StaticCredential(srv.Addr, orasauth.Credential{Username: "bob", Password: authUsers["bob"]}),
		}
		ctx := context.Background()
		blob := []byte("artifact through the Basic challenge")
		desc := content.NewDescriptorFromBytes("application/vnd.example", blob)
		if err := repo.Push(ctx, desc, bytes.NewReader(blob)); err != nil {
			t.Fatalf("oras push: %v", err)
		}
		rc, err := repo.Fetch(ctx, desc)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, blob) {
			t.Fatal("oras fetched other bytes")
		}
		manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[` +
			`{"mediaType":"application/vnd.example","digest":"` + desc.Digest.String() + `","size":` + strconv.FormatInt(desc.Size, 10) + `}]}`)
		empty := content.NewDescriptorFromBytes("application/vnd.oci.empty.v1+json", []byte("{}"))
		if err := repo.Push(ctx, empty, bytes.NewReader([]byte("{}"))); err != nil {
			t.Fatal(err)
		}
		md := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manifest)
		if err := repo.PushReference(ctx, md, bytes.NewReader(manifest), "v1"); err != nil {
			t.Fatalf("oras tag: %v", err)
		}
		if d, err := repo.Resolve(ctx, "v1"); err != nil || d.Digest != md.Digest {
			t.Fatalf("oras resolve: %v %v", d, err)
		}
	})
	// The audit lines of the pushes name the actor; no password is logged.
	log := srv.Log()
	if !strings.Contains(log, "audit=true") || !strings.Contains(log, "actor=alice") {
		t.Errorf("no audit line with the actor in the log")
	}
	for _, pw := range authUsers {
		if strings.Contains(log, pw) {
			t.Errorf("the server log holds a password")
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if strings.Join(a[k], "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

// TestAuthCLIsOverTLS: crane, oras, regctl and skopeo log in to a TLS +
// htpasswd registry (each with its own config directory, never the
// user's), then push and pull.
func TestAuthCLIsOverTLS(t *testing.T) {
	s := newAuthSetup(t, orgPolicyYAML)
	srv := s.start(t)
	host := srv.Addr
	img := seedImage(t, s.ca, srv, "team-a/seed:v1", "alice")
	want, _ := img.Digest()
	pw := func() io.Reader { return strings.NewReader(authUsers["bob"] + "\n") }
	caEnv := "SSL_CERT_FILE=" + s.ca.caFile

	t.Run("crane", func(t *testing.T) {
		env := []string{"DOCKER_CONFIG=" + t.TempDir(), "HOME=" + t.TempDir(), caEnv}
		runStdin(t, env, pw(), "crane", "auth", "login", host, "-u", "bob", "--password-stdin")
		run(t, env, "crane", "copy", host+"/team-a/seed:v1", host+"/team-a/crane:v1")
		if d := strings.TrimSpace(run(t, env, "crane", "digest", host+"/team-a/crane:v1")); d != want.String() {
			t.Fatalf("crane digest %s, want %s", d, want)
		}
	})
	t.Run("oras", func(t *testing.T) {
		work := t.TempDir()
		cfg := filepath.Join(work, "auth.json")
		flags := []string{"--registry-config", cfg, "--ca-file", s.ca.caFile}
		runStdin(t, []string{"HOME=" + work}, pw(), "oras", append([]string{"login", host, "-u", "bob", "--password-stdin"}, flags...)...)
		if err := os.WriteFile(filepath.Join(work, "a.txt"), []byte("oras over tls\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		runIn(t, work, "oras", append([]string{"push", host + "/team-a/oras:v1", "a.txt:text/plain"}, flags...)...)
		out := filepath.Join(work, "out")
		runIn(t, work, "oras", append([]string{"pull", host + "/team-a/oras:v1", "-o", out}, flags...)...)
		if got, err := os.ReadFile(filepath.Join(out, "a.txt")); err != nil || string(got) != "oras over tls\n" {
			t.Fatalf("oras pull: %q %v", got, err)
		}
	})
	t.Run("regctl", func(t *testing.T) {
		env := []string{"HOME=" + t.TempDir(), caEnv}
		runStdin(t, env, pw(), "regctl", "registry", "login", host, "-u", "bob", "--pass-stdin")
		run(t, env, "regctl", "image", "copy", host+"/team-a/seed:v1", host+"/team-a/regctl:v1")
		if d := strings.TrimSpace(run(t, env, "regctl", "image", "digest", host+"/team-a/regctl:v1")); d != want.String() {
			t.Fatalf("regctl digest %s, want %s", d, want)
		}
	})
	t.Run("skopeo", func(t *testing.T) {
		authfile := filepath.Join(t.TempDir(), "auth.json")
		runStdin(t, nil, pw(), "skopeo", "login", "--authfile", authfile, "--cert-dir", s.ca.dir, "-u", "bob", "--password-stdin", host)
		run(t, nil, "skopeo", "copy", "--authfile", authfile, "--src-cert-dir", s.ca.dir, "--dest-cert-dir", s.ca.dir,
			"docker://"+host+"/team-a/seed:v1", "docker://"+host+"/team-a/skopeo:v1")
		if out := run(t, nil, "skopeo", "inspect", "--authfile", authfile, "--cert-dir", s.ca.dir, "docker://"+host+"/team-a/skopeo:v1"); !strings.Contains(out, want.String()) {
			t.Fatalf("skopeo inspect: %s", out)
		}
	})
	t.Run("podman", func(t *testing.T) {
		p := newPodman(t, "--cert-dir", s.ca.dir)
		p.login(pw(), host, "bob")
		p.copyTag(host+"/team-a/seed:v1", host+"/team-a/podman:v1")
		if _, err := remote.Head(tlsRef(t, srv, "team-a/podman:v1"), ggcrOpts(s.ca, "alice")...); err != nil {
			t.Fatalf("the image podman pushed: %v", err)
		}
	})
	t.Run("login with a wrong password fails", func(t *testing.T) {
		env := []string{"DOCKER_CONFIG=" + t.TempDir(), "HOME=" + t.TempDir(), caEnv}
		cmd := exec.Command(tool(t, "crane"), "auth", "login", host, "-u", "bob", "-p", "wrong")
		cmd.Env = append(os.Environ(), env...)
		// crane auth login only stores the credential; using it must fail.
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("crane auth login: %v %s", err, out)
		}
		cmd = exec.Command(tool(t, "crane"), "digest", host+"/team-a/seed:v1")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "UNAUTHORIZED") {
			t.Fatalf("crane with a wrong password: %v %s", err, out)
		}
	})
}

// TestAuthStartupRefusesNonBcrypt: a non-bcrypt line stops `stratus
// serve` with a message naming the file and line.
func TestAuthStartupRefusesNonBcrypt(t *testing.T) {
	s := newAuthSetup(t, "")
	f, err := os.OpenFile(s.htpasswd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("dave:$apr1$salt1234$abcdefghijklmnopqrstuv\n")
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stratusBin, "serve", "--config", s.config, "--addr", "127.0.0.1:0", "--set", "metrics.addr=off", "--root", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve started with an MD5 line:\n%s", out)
	}
	if want := s.htpasswd + ":4:"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "not bcrypt") {
		t.Fatalf("the error does not name %s:\n%s", want, out)
	}
}

// TestAuthPolicyReload: an edit of the configuration file changes the
// policy of a running server; a broken edit keeps the old one.
func TestAuthPolicyReload(t *testing.T) {
	s := newAuthSetup(t, orgPolicyYAML)
	srv := s.start(t)
	seedImage(t, s.ca, srv, "team-a/app:v1", "alice")
	carolPulls := func() int {
		_, err := remote.Head(tlsRef(t, srv, "team-a/app:v1"), ggcrOpts(s.ca, "carol")...)
		if err == nil {
			return http.StatusOK
		}
		return statusOf(err)
	}
	waitFor := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for carolPulls() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: carol still gets %d, want %d", what, carolPulls(), want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if got := carolPulls(); got != http.StatusForbidden {
		t.Fatalf("carol before the edit: %d", got)
	}
	s.writeConfig(t, strings.Replace(orgPolicyYAML, "team-a: [alice, bob]", "team-a: [alice, bob, carol]", 1))
	waitFor(http.StatusOK, "after adding carol to team-a")
	s.writeConfig(t, strings.Replace(orgPolicyYAML, "actions: [pull]", "actions: [write]", 1))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(srv.Log(), "access policy NOT reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("the broken edit was not reported")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := carolPulls(); got != http.StatusOK {
		t.Fatalf("a broken edit changed the policy: carol gets %d", got)
	}
}
