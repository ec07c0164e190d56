package content

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/stratus-registry/stratus/storage"
)

// A link (repos/<name>/_links/<alg>/<hex>) says that a repository may serve
// a blob. Links written since layout v2 also carry what a pull needs, the
// blob's size and data key, so a HEAD is one small read and a GET one small
// read plus the data:
//
//	{"digest":"sha256:...","size":1234,"data":"data/<upload-id>"}
//
// Both facts are immutable while the blob exists: the size is fixed by the
// digest, and a record, once written create-only, names its data key until
// GC deletes record and data together. A link is rewritten whenever a
// commit, mount or Link writes it, so it always names the data of the
// record current at that write. Links of layout v1 hold only the digest;
// reading one falls back to the blob record (one more read), so stores
// written by earlier versions keep working unchanged.
type linkObject struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Data   string `json:"data"`
}

func encodeLink(b Blob) []byte {
	out, _ := json.Marshal(linkObject{Digest: b.Digest.String(), Size: b.Size, Data: string(b.Data)})
	return out
}

// EncodeLink is the v2 link object of b, for tests and tools that build a
// bucket directly.
func EncodeLink(b Blob) []byte { return encodeLink(b) }

// readLink reads this repository's link of d. complete is false for a v1
// link (digest only) or one that does not decode: the caller then reads the
// blob record.
func (r *Repository) readLink(ctx context.Context, d digest.Digest) (b Blob, complete bool, err error) {
	raw, err := storage.ReadAll(ctx, r.s.driver, LinkKey(r.name, d), maxRecordSize)
	if errors.Is(err, storage.ErrNotFound) {
		return Blob{}, false, fmt.Errorf("%w: %s in %s", ErrBlobUnknown, d, r.name)
	}
	if err != nil {
		return Blob{}, false, err
	}
	if !bytes.HasPrefix(raw, []byte("{")) {
		return Blob{Digest: d}, false, nil
	}
	var l linkObject
	if json.Unmarshal(raw, &l) != nil || l.Digest != d.String() || l.Size < 0 || !validDataKey(l.Data) {
		r.s.logger.Warn("link does not decode; reading the blob record", "repo", r.name, "digest", d.String())
		return Blob{Digest: d}, false, nil
	}
	return Blob{Digest: d, Size: l.Size, Data: DataRef(l.Data)}, true, nil
}

func validDataKey(k string) bool {
	id, ok := bytes.CutPrefix([]byte(k), []byte(dataPrefix))
	return ok && len(id) > 0 && !bytes.ContainsAny(id, "/")
}

// servable is what a pull needs of d in this repository, from the link
// alone when it is complete.
func (r *Repository) servable(ctx context.Context, d digest.Digest) (Blob, error) {
	b, complete, err := r.readLink(ctx, d)
	if err != nil || complete {
		return b, err
	}
	return r.s.Stat(ctx, d)
}

// verified is what a write relies on (a manifest's reference check, a
// mount, a link): this repository links d and the global record exists. It
// reads the record even when the link is complete, because these answers
// are what GC's safety argument rests on (docs/architecture.md).
func (r *Repository) verified(ctx context.Context, d digest.Digest) (Blob, error) {
	if _, _, err := r.readLink(ctx, d); err != nil {
		return Blob{}, err
	}
	return r.s.Stat(ctx, d)
}

// ServeBlob is the blob HEAD/GET path: it returns what the repository
// serves for d, and pins the link and the digest only once the blob is
// found. A request for a blob that does not exist therefore leaves no pin
// behind (an unknown-digest probe costs no Redis or process memory), while
// one that is answered 200 pins exactly as before; a refused pin (GC is
// deleting the blob) is ErrBlobUnknown.
//
// Checking before pinning leaves one window, between the read and the
// pin, in which a GC pass could claim and delete the blob and release its
// claim. A GET closes it: its data read comes after the pin, and Open maps
// missing data to ErrBlobUnknown. A HEAD in that window answers 200 for a
// blob GC just removed as garbage (unreferenced for longer than the grace
// period); the client's manifest PUT then pins before it checks and fails
// cleanly with MANIFEST_BLOB_UNKNOWN, so nothing is lost or hidden.
func (r *Repository) ServeBlob(ctx context.Context, d digest.Digest) (Blob, error) {
	b, err := r.servable(ctx, d)
	if err != nil {
		return Blob{}, err
	}
	if err := r.PinBlob(ctx, d, false); err != nil {
		return Blob{}, err
	}
	return b, nil
}
