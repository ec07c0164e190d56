package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/stratus-registry/stratus/notifications"
)

const sarifType = "application/sarif+json"

// scanReport is the "scan" of the pattern: a SARIF 2.1.0 log with one
// result per layer, computed from the manifest alone, so the test can
// compute the same report and compare bytes.
func scanReport(manifest []byte) ([]byte, error) {
	var m struct {
		Layers []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, err
	}
	type result struct {
		RuleID  string            `json:"ruleId"`
		Level   string            `json:"level"`
		Message map[string]string `json:"message"`
	}
	results := []result{}
	for _, l := range m.Layers {
		results = append(results, result{RuleID: "layer-size", Level: "note",
			Message: map[string]string{"text": fmt.Sprintf("layer %s has %d bytes", l.Digest, l.Size)}})
	}
	return json.Marshal(map[string]any{
		"version": "2.1.0",
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]string{"name": "stratus-example-scanner"}},
			"results": results,
		}},
	})
}

// scanner is the receiver side of scan-on-push: on each image push event
// it fetches the manifest, scans it and attaches the report as an OCI
// referrer whose subject is the image. It skips manifests that have a
// subject themselves (its own reports, which raise push events too).
func scanner(t *testing.T, registry string) func(hookEvent) {
	return func(e hookEvent) {
		if e.ceType != notifications.TypeImagePushed {
			return
		}
		// Off the webhook's goroutine: the receiver answers at once and
		// scans afterwards, as a real scanner queues its work.
		go func() {
			if err := scanAndAttach(registry, e.event.Target); err != nil {
				t.Errorf("scanner: %v", err)
			}
		}()
	}
}

func scanAndAttach(registry string, target notifications.Target) error {
	ctx := context.Background()
	repo, err := orasremote.NewRepository(registry + "/" + target.Repository)
	if err != nil {
		return err
	}
	repo.PlainHTTP = true
	desc, rc, err := repo.FetchReference(ctx, target.Digest.String())
	if err != nil {
		return fmt.Errorf("fetch %s: %w", target.Digest, err)
	}
	manifest, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	var probe struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(manifest, &probe) == nil && probe.Subject != nil {
		return nil
	}
	report, err := scanReport(manifest)
	if err != nil {
		return err
	}
	rd := content.NewDescriptorFromBytes(sarifType, report)
	if err := repo.Push(ctx, rd, bytes.NewReader(report)); err != nil {
		return fmt.Errorf("push report: %w", err)
	}
	subject := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	_, err = oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, sarifType,
		oras.PackManifestOptions{Subject: &subject, Layers: []ocispec.Descriptor{rd}})
	return err
}

// TestScanOnPushAttachesReferrer: a push raises a CloudEvent, the scanner
// attaches a SARIF report to the image, and the referrers API lists it
// with the exact report the manifest produces.
func TestScanOnPushAttachesReferrer(t *testing.T) {
	hooks := newHookServer(t)
	srv := startServer(t, append([]string{"--root", t.TempDir()}, fastRetries...), hookEnv(t, hookEndpoint{
		Name: "scanner", URL: hooks.srv.URL + "/scanner", Secret: hookSecret, Format: "cloudevents",
		Filters: notifications.Filters{Actions: []notifications.Action{"push"}},
	}))
	hooks.onEvent = scanner(t, srv.Addr)

	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, srv, "scan/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	want, err := scanReport(raw)
	if err != nil {
		t.Fatal(err)
	}

	var idx ocispec.Index
	deadline := time.Now().Add(60 * time.Second)
	for len(idx.Manifests) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no referrer attached within 60s; events: %+v", hooks.received("/scanner"))
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get(srv.URL() + "/v2/scan/app/referrers/" + d.String() + "?artifactType=" + url.QueryEscape(sarifType))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&idx)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("referrers: %s %v", resp.Status, err)
		}
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != sarifType {
		t.Fatalf("referrers of the image: %+v, want one %s", idx.Manifests, sarifType)
	}
	repo, err := orasremote.NewRepository(srv.Addr + "/scan/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	ctx := context.Background()
	mb, err := content.FetchAll(ctx, repo, idx.Manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	var report ocispec.Manifest
	if err := json.Unmarshal(mb, &report); err != nil || len(report.Layers) != 1 || report.Subject == nil || report.Subject.Digest.String() != d.String() {
		t.Fatalf("report manifest %s: %v", mb, err)
	}
	got, err := content.FetchAll(ctx, repo, report.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("attached report:\n%s\nwant:\n%s", got, want)
	}
}
