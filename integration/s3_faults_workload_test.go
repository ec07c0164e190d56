package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"

// faultWorkload is what every worker of TestS3ApplyThenDrop shares.
type faultWorkload struct {
	seed   uint64
	addr   string // the registry's host:port, for go-containerregistry
	client *rawClient
	rec    *faultRecorder
	// shared blobs are pushed by every worker, into its own repository, so
	// that commits of one digest race (one create-only record write wins).
	shared   []blobContent
	deadline time.Time
	maxOps   int
	// partSize is the registry's S3 part size: blobs above it take
	// multipart uploads with several parts.
	partSize int64
}

// ackedManifest is a manifest the registry answered 201 to, with the tags
// it was acknowledged under.
type ackedManifest struct {
	repo, dgst string
	body       []byte
	tags       []string
}

// ackedImage is an image go-containerregistry pushed without error.
type ackedImage struct {
	repo, tag, dgst string
	raw             []byte
	blobs           []string // config and layer digests
}

// faultWorker pushes into and pulls from its own repositories.
type faultWorker struct {
	*faultWorkload
	id            int
	rng           *rand.Rand
	repo, imgRepo string
	next          uint64
	blobs         []blobContent // acknowledged in repo (a digest may repeat)
	manifests     []ackedManifest
	images        []ackedImage
	unacked       []blobContent // blob pushes that were not acknowledged
}

func newFaultWorker(wl *faultWorkload, id int) *faultWorker {
	return &faultWorker{
		faultWorkload: wl, id: id,
		rng:  rand.New(rand.NewPCG(wl.seed, 1000+uint64(id))),
		repo: fmt.Sprintf("faults/w%d/raw", id), imgRepo: fmt.Sprintf("faults/w%d/img", id),
	}
}

// run does operations until the deadline or maxOps; an operation that has
// started is finished, so nothing is cut off by the clock.
func (w *faultWorker) run(ctx context.Context) {
	// Every worker cancels one upload first, so that AbortMultipartUpload,
	// otherwise a rare operation, is seen often enough for every fault
	// kind to hit it.
	w.cancelUpload(ctx)
	for i := 1; i < w.maxOps && time.Now().Before(w.deadline) && ctx.Err() == nil; i++ {
		w.step(ctx)
	}
}

func (w *faultWorker) step(ctx context.Context) {
	switch p := w.rng.IntN(100); {
	case len(w.blobs) < 3 || p < 26:
		w.pushBlob(ctx, w.newContent(w.blobSize(false)), false)
	case p < 52:
		w.pushBlob(ctx, w.newContent(w.blobSize(true)), true)
	case p < 58:
		w.pushBlob(ctx, w.shared[w.rng.IntN(len(w.shared))], w.rng.IntN(2) == 0)
	case p < 61:
		w.pushBlob(ctx, newContent(0, 0, 0), true) // the empty blob: no PATCH at all
	case p < 68:
		w.cancelUpload(ctx)
	case p < 80:
		w.pushManifest(ctx)
	case p < 87:
		w.pushImage(ctx)
	default:
		w.pullSome(ctx)
	}
}

func (w *faultWorker) newContent(size int64) blobContent {
	w.next++
	return newContent(w.seed, uint64(w.id+1)<<32|w.next, size)
}

// blobSize: mostly small blobs, some above the part size so that uploads
// have several parts (and chunked ones an UploadPartCopy tail).
func (w *faultWorker) blobSize(chunked bool) int64 {
	if chunked {
		if w.rng.IntN(100) < 35 {
			return w.partSize + w.rng.Int64N(w.partSize+w.partSize/5)
		}
		return 16<<10 + w.rng.Int64N(3<<20)
	}
	if w.rng.IntN(100) < 20 {
		return w.partSize + 1 + w.rng.Int64N(3<<20)
	}
	return 1<<10 + w.rng.Int64N(256<<10)
}

// chunkSize is about 1 MiB, the way regctl streams.
func (w *faultWorker) chunkSize() int64 { return 768<<10 + w.rng.Int64N(512<<10) }

func (w *faultWorker) pushBlob(ctx context.Context, c blobContent, chunked bool) {
	var ok bool
	if chunked {
		ok = w.pushChunked(ctx, w.repo, c)
	} else {
		ok = w.pushMonolithic(ctx, w.repo, c.dgst, func() (io.Reader, int64) { return c.reader(), c.size })
	}
	if ok {
		w.blobs = append(w.blobs, c)
	} else {
		w.unacked = append(w.unacked, c)
	}
}

// expect checks the final answer to one request of a push; anything else
// than want is a problem, a 429/503 that retries did not cure included.
func (w *faultWorker) expect(r rawResp, err error, what string, want int) bool {
	switch {
	case err != nil:
		w.rec.problem("%s: the registry did not answer: %v", what, err)
		return false
	case r.status == want:
		return true
	case r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable:
		w.rec.problem("%s: still %d after %d attempts of the same request: %s", what, r.status, r.attempts, r.body)
	default:
		w.rec.problem("%s: status %d after %d attempt(s): %s", what, r.status, r.attempts, r.body)
	}
	return false
}

func (w *faultWorker) checkDigest(r rawResp, what, dgst string) bool {
	if got := r.header.Get("Docker-Content-Digest"); got != dgst {
		w.rec.problem("%s: %d with Docker-Content-Digest %q, want %s", what, r.status, got, dgst)
		return false
	}
	return true
}

// pushMonolithic is POST ?digest= with the whole blob.
func (w *faultWorker) pushMonolithic(ctx context.Context, repo, dgst string, body requestBody) bool {
	what := "monolithic push of " + dgst
	r, err := w.client.do(ctx, "POST ?digest=", http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+dgst, body,
		"Content-Type", "application/octet-stream")
	return w.expect(r, err, what, http.StatusCreated) && w.checkDigest(r, what, dgst)
}

func rangeTo(end int64) string { return fmt.Sprintf("0-%d", end-1) }

func location(r rawResp, prev string) string {
	if l := r.header.Get("Location"); l != "" {
		return l
	}
	return prev
}

// pushChunked is POST, ~1 MiB PATCHes with Content-Range, PUT ?digest=.
// A 202 must mean the chunk is stored: the next PATCH starts where it
// says. The one 416 accepted is on a PATCH resent after a 503 whose Range
// shows that the 503'd attempt had stored the chunk; the push then
// re-syncs from that Range (and the tally counts it).
func (w *faultWorker) pushChunked(ctx context.Context, repo string, c blobContent) bool {
	what := fmt.Sprintf("chunked push of %s (%d bytes)", c.dgst, c.size)
	r, err := w.client.do(ctx, "POST upload", http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if !w.expect(r, err, what+": POST", http.StatusAccepted) {
		return false
	}
	loc := location(r, "")
	chunk := w.chunkSize()
	src := c.reader()
	buf := make([]byte, chunk)
	for off := int64(0); off < c.size; {
		m, _ := io.ReadFull(src, buf[:min(chunk, c.size-off)])
		end := off + int64(m)
		r, err := w.client.do(ctx, "PATCH chunk", http.MethodPatch, loc, bytesBody(buf[:m]),
			"Content-Range", fmt.Sprintf("%d-%d", off, end-1), "Content-Type", "application/octet-stream")
		if err == nil && r.status == http.StatusRequestedRangeNotSatisfiable && r.attempts > 1 && r.header.Get("Range") == rangeTo(end) {
			w.rec.add("PATCH answered 503 but stored (re-synced from the 416's Range)", 1)
			loc, off = location(r, loc), end
			continue
		}
		step := fmt.Sprintf("%s: PATCH %d-%d", what, off, end-1)
		if !w.expect(r, err, step, http.StatusAccepted) {
			return false
		}
		if got := r.header.Get("Range"); got != rangeTo(end) {
			w.rec.problem("%s: 202 with Range %q, want %q", step, got, rangeTo(end))
			return false
		}
		loc, off = location(r, loc), end
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r, err = w.client.do(ctx, "PUT ?digest=", http.MethodPut, loc+sep+"digest="+c.dgst, nil)
	return w.expect(r, err, what+": PUT", http.StatusCreated) && w.checkDigest(r, what, c.dgst)
}

// cancelUpload starts an upload, sends one chunk and deletes the upload,
// which aborts its multipart upload in the store.
func (w *faultWorker) cancelUpload(ctx context.Context) {
	c := w.newContent(64<<10 + w.rng.Int64N(512<<10))
	r, err := w.client.do(ctx, "POST upload", http.MethodPost, "/v2/"+w.repo+"/blobs/uploads/", nil)
	if !w.expect(r, err, "cancelled upload: POST", http.StatusAccepted) {
		return
	}
	loc := location(r, "")
	data, _ := io.ReadAll(c.reader())
	r, err = w.client.do(ctx, "PATCH chunk", http.MethodPatch, loc, bytesBody(data),
		"Content-Range", fmt.Sprintf("0-%d", c.size-1), "Content-Type", "application/octet-stream")
	if !w.expect(r, err, "cancelled upload: PATCH", http.StatusAccepted) {
		return
	}
	loc = location(r, loc)
	r, err = w.client.do(ctx, "DELETE upload", http.MethodDelete, loc, nil)
	if err == nil && r.status == http.StatusNotFound && r.attempts > 1 {
		w.rec.add("DELETE upload answered 503 but done (404 on the resend)", 1)
		return
	}
	if w.expect(r, err, "cancelled upload: DELETE", http.StatusNoContent) {
		w.rec.add("uploads cancelled", 1)
	}
}

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        ociDescriptor     `json:"config"`
	Layers        []ociDescriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations"`
}

func sha256Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushManifest pushes a config blob, then a manifest over it and 1-3 of
// the worker's acknowledged blobs, by tag or by digest, and sometimes tags
// it a second time.
func (w *faultWorker) pushManifest(ctx context.Context) {
	w.next++
	n := w.next
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Labels":{"stratus.test":"w%d-%d"}},"rootfs":{"type":"layers","diff_ids":[]}}`, w.id, n)
	cfgDigest := sha256Digest(cfg)
	if !w.pushMonolithic(ctx, w.repo, cfgDigest, bytesBody(cfg)) {
		return
	}
	w.blobs = append(w.blobs, blobContent{size: int64(len(cfg)), dgst: cfgDigest}) // verified by digest only
	m := ociManifest{
		SchemaVersion: 2, MediaType: mtOCIManifest,
		Config:      ociDescriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cfgDigest, Size: int64(len(cfg))},
		Annotations: map[string]string{"stratus.test": fmt.Sprintf("w%d-%d", w.id, n)},
	}
	for _, i := range w.rng.Perm(len(w.blobs))[:1+w.rng.IntN(min(3, len(w.blobs)))] {
		b := w.blobs[i]
		m.Layers = append(m.Layers, ociDescriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: b.dgst, Size: b.size})
	}
	body, _ := json.Marshal(m)
	dgst := sha256Digest(body)
	acked := ackedManifest{repo: w.repo, dgst: dgst, body: body}
	tag := fmt.Sprintf("w%d-m%d", w.id, n)
	ref := dgst
	if w.rng.IntN(2) == 0 {
		ref = tag
	}
	r, err := w.client.do(ctx, "PUT manifest", http.MethodPut, "/v2/"+w.repo+"/manifests/"+ref, bytesBody(body), "Content-Type", mtOCIManifest)
	if !w.expect(r, err, "PUT manifest "+ref, http.StatusCreated) || !w.checkDigest(r, "PUT manifest "+ref, dgst) {
		return
	}
	if ref == tag {
		acked.tags = append(acked.tags, tag)
	}
	if w.rng.IntN(2) == 0 {
		tag2 := tag + "-again"
		r, err := w.client.do(ctx, "PUT tag", http.MethodPut, "/v2/"+w.repo+"/manifests/"+tag2, bytesBody(body), "Content-Type", mtOCIManifest)
		if w.expect(r, err, "PUT tag "+tag2, http.StatusCreated) && w.checkDigest(r, "PUT tag "+tag2, dgst) {
			acked.tags = append(acked.tags, tag2)
		}
	}
	w.manifests = append(w.manifests, acked)
}

// pushImage pushes a random image with go-containerregistry, which
// retries internally; every answer it gets is still recorded.
func (w *faultWorker) pushImage(ctx context.Context) {
	w.next++
	img, err := random.Image(16<<10+w.rng.Int64N(128<<10), 2)
	if err != nil {
		w.rec.problem("random image: %v", err)
		return
	}
	tag := fmt.Sprintf("w%d-i%d", w.id, w.next)
	ref, err := name.ParseReference(w.addr+"/"+w.imgRepo+":"+tag, name.Insecure)
	if err != nil {
		w.rec.problem("reference: %v", err)
		return
	}
	err = remote.Write(ref, img, remote.WithContext(ctx),
		remote.WithTransport(recordingTransport{next: http.DefaultTransport, rec: w.rec}),
		remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}))
	if err != nil {
		w.rec.problem("go-containerregistry push of %s failed: %v", ref, err)
		w.rec.add("image pushes failed", 1)
		return
	}
	raw, _ := img.RawManifest()
	d, _ := img.Digest()
	m, _ := img.Manifest()
	blobs := []string{m.Config.Digest.String()}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest.String())
	}
	w.images = append(w.images, ackedImage{repo: w.imgRepo, tag: tag, dgst: d.String(), raw: raw, blobs: blobs})
}

// pullSome pulls one acknowledged blob, manifest or image while faults
// are on; a pull may be cut short (retried), but never return wrong bytes
// or lose what was acknowledged.
func (w *faultWorker) pullSome(ctx context.Context) {
	var status int
	var what string
	switch p := w.rng.IntN(3); {
	case p == 0 && len(w.manifests) > 0:
		m := w.manifests[w.rng.IntN(len(w.manifests))]
		ref := m.dgst
		if len(m.tags) > 0 {
			ref = m.tags[0]
		}
		status, what = w.client.pull(ctx, "GET manifest", "/v2/"+m.repo+"/manifests/"+ref, m.dgst, m.body, "Accept", mtOCIManifest)
	case p == 1 && len(w.images) > 0:
		im := w.images[w.rng.IntN(len(w.images))]
		d := im.blobs[w.rng.IntN(len(im.blobs))]
		status, what = w.client.pull(ctx, "GET blob", "/v2/"+im.repo+"/blobs/"+d, d, nil)
	default:
		b := w.blobs[w.rng.IntN(len(w.blobs))]
		status, what = w.client.pull(ctx, "GET blob", "/v2/"+w.repo+"/blobs/"+b.dgst, b.dgst, nil)
	}
	w.rec.add("pulls under faults", 1)
	if what != "" {
		w.rec.problem("pull under faults (status %d): %s", status, what)
	}
}
