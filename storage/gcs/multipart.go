package gcs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	gcs "cloud.google.com/go/storage"

	"github.com/stratus-registry/stratus/storage"
)

// A resumable write is a set of part objects composed into the key on
// Commit (design (a) of docs/architecture.md; the Go client's resumable
// Writer cannot continue in another process, and a raw resumable session
// cannot take back bytes of a failed Append).
//
// Every part but the last is chunk_size bytes. The last one, the tail, is
// shorter; the next Append reads it back and writes it again with the new
// bytes, until it fills. So:
//   - memory is one upload buffer (the Go client's, chunk_size) plus a
//     small copy buffer, whatever the object size;
//   - full parts are never rewritten; tail bytes are rewritten once per
//     Append until a part fills, about chunk_size/(2c) extra writes per
//     byte for appends of c bytes: bounded, linear in the object size;
//   - every object an Append writes is named after its part index and the
//     Append's sequence number, so a failed Append never touches an object
//     the saved handle names, and an Append resumed from that handle writes
//     the same names again, overwriting what the failed one left;
//   - the handle records each part's generation, and Commit composes
//     exactly those generations, 32 per call (GCS's limit), in levels;
//     composing moves no data through us;
//   - the handle carries the CRC32C of every byte accepted, which GCS
//     checks against the composed object (and Commit checks again).
// A marker object, written at NewMultipart and deleted by Commit and
// Abort, tells a live write from a finished one.

// handleVersion changes when the handle format does.
const handleVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// handleState is everything needed to continue a write; it is the handle.
type handleState struct {
	storage.HandleHeader        // its ID names the write's temporary objects
	Bucket               string `json:"bucket"`
	// Seq counts successful non-empty Appends; an Append writes its
	// objects with Seq+1 in their names.
	Seq   int64   `json:"seq"`
	Parts []piece `json:"parts"`
	Tail  *piece  `json:"tail,omitempty"`
	// Prev is a tail this state no longer uses but an older handle
	// did; the next Append deletes it.
	Prev *piece `json:"prev,omitempty"`
	Size int64  `json:"size"`
	CRC  uint32 `json:"crc32c"`
}

// piece is one part object: its index is its position (the tail's is
// len(Parts)), Seq the Append that wrote it.
type piece struct {
	Index int   `json:"i"`
	Seq   int64 `json:"q"`
	Gen   int64 `json:"g"`
	Size  int64 `json:"s"`
}

type multipart struct {
	d   *Driver
	st  handleState
	err error
}

func (d *Driver) uploadDir(id string) string {
	return d.root + storage.InternalDir + "uploads/" + id + "/"
}

func (m *multipart) dir() string { return m.d.uploadDir(m.st.ID) }

func (m *multipart) marker() *gcs.ObjectHandle { return m.d.bucket.Object(m.dir() + "session") }

// pieceObject is the handle of a part object, pinned to its generation
// once it has one.
func (m *multipart) pieceObject(p piece) *gcs.ObjectHandle {
	o := m.d.bucket.Object(fmt.Sprintf("%sp%06d-%010d", m.dir(), p.Index, p.Seq))
	if p.Gen > 0 {
		o = o.Generation(p.Gen)
	}
	return o
}

// NewMultipart implements storage.Driver. The marker is written now, so
// that Abort and Commit are visible to every later resume.
func (d *Driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	if err := d.checkKey("multipart", key); err != nil {
		return nil, err
	}
	m := &multipart{d: d, st: handleState{
		HandleHeader: storage.NewHandleHeader(handleVersion, driverName, d.root, key), Bucket: d.cfg.Bucket,
	}}
	// The id is random: a 412 can only be a retry meeting our own marker.
	_, err := d.uploadBytes(ctx, m.marker().If(gcs.Conditions{DoesNotExist: true}), nil, "")
	if err = opError("multipart", key, err); err != nil && !errors.Is(err, storage.ErrExists) {
		return nil, err
	}
	return m, nil
}

// ResumeMultipart implements storage.Driver. It checks that the write is
// still live, so an aborted or committed one fails here rather than after
// more data was sent.
func (d *Driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	var st handleState
	if err := storage.DecodeHandle(driverName, handle, &st, &st.HandleHeader, func() error { return d.checkHandle(&st) }); err != nil {
		return nil, err
	}
	m := &multipart{d: d, st: st}
	if _, err := m.marker().Attrs(ctx); err != nil {
		return nil, m.goneError("resume", err)
	}
	return m, nil
}

// goneError reports a missing marker or part as the write being gone.
func (m *multipart) goneError(op string, err error) error {
	if c := classify(err); errors.Is(c, storage.ErrNotFound) {
		return &storage.OpError{Op: op, Driver: driverName, Key: m.st.Key, Err: fmt.Errorf("%w: %w", storage.ErrUploadGone, err)}
	}
	return opError(op, m.st.Key, err)
}

// checkHandle rejects handles of other drivers, buckets or formats, and
// inconsistent ones.
func (d *Driver) checkHandle(st *handleState) error {
	if err := st.Check(handleVersion, driverName, d.root); err != nil {
		return err
	}
	switch {
	case st.Bucket != d.cfg.Bucket:
		return fmt.Errorf("handle is for bucket %q", st.Bucket)
	case st.Seq < 0 || len(st.Parts) > MaxComponents || (len(st.Parts) == MaxComponents && st.Tail != nil):
		return errors.New("invalid sequence or part count")
	}
	total := int64(0)
	for i, p := range st.Parts {
		if err := validPiece(p, i, st.Seq); err != nil {
			return fmt.Errorf("part %d: %v", i, err)
		}
		total += p.Size
	}
	if st.Tail != nil {
		if err := validPiece(*st.Tail, len(st.Parts), st.Seq); err != nil {
			return fmt.Errorf("tail: %v", err)
		}
		total += st.Tail.Size
	}
	if st.Prev != nil && (st.Prev.Index < 0 || st.Prev.Seq < 1 || st.Prev.Seq > st.Seq) {
		return errors.New("invalid previous tail")
	}
	if total != st.Size {
		return errors.New("size does not match parts and tail")
	}
	return nil
}

func validPiece(p piece, index int, seq int64) error {
	if p.Index != index || p.Seq < 1 || p.Seq > seq || p.Gen <= 0 || p.Size <= 0 {
		return errors.New("inconsistent")
	}
	return nil
}

func (m *multipart) Size() int64 { return m.st.Size }

func (m *multipart) Handle() ([]byte, error) { return json.Marshal(m.st) }

// fail marks the writer unusable and wraps err for op.
func (m *multipart) fail(op string, err error) error {
	m.err = storage.ErrWriterDone
	return m.d.putError(op, m.st.Key, err)
}

// Append implements storage.Multipart.
func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	if m.err != nil {
		return 0, &storage.OpError{Op: "append", Driver: driverName, Key: m.st.Key, Err: m.err}
	}
	st := m.st
	st.Parts = slices.Clip(st.Parts) // appends must not touch m.st's array
	src := &trackingReader{r: storage.ContextReader(ctx, r)}
	br := bufio.NewReaderSize(src, 64<<10)
	// Read before writing anything: an empty Append costs no request.
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			return 0, nil
		}
		return 0, m.fail("append", &bodyError{err})
	}
	st.Seq++
	st.Prev = nil
	partSize := int64(m.d.cfg.ChunkSize)
	var took int64
	for {
		if st.Tail != nil && st.Tail.Size >= partSize {
			// Written by an instance with a larger chunk_size: big enough
			// to be a part as it is.
			st.Parts = append(st.Parts, *st.Tail)
			st.Tail = nil
		}
		if len(st.Parts) >= MaxComponents {
			return took, m.fail("append", fmt.Errorf("object exceeds %d parts of %s (raise storage.gcs.chunk_size)", MaxComponents, m.d.cfg.ChunkSize))
		}
		n, p, err := m.writePiece(ctx, &st, br, partSize)
		took += n
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				err = cerr
			} else if src.err != nil {
				err = &bodyError{src.err}
			}
			return took, m.fail("append", err)
		}
		if st.Tail != nil {
			st.Prev = st.Tail // superseded, but the handle we started from names it
		}
		if p.Size < partSize {
			st.Tail = &p
			break
		}
		st.Parts = append(st.Parts, p)
		st.Tail = nil
		if _, err := br.Peek(1); err == io.EOF {
			break
		} else if err != nil {
			return took, m.fail("append", &bodyError{err})
		}
	}
	st.Size += took
	if old := m.st.Prev; old != nil {
		// No handle the caller can still hold names it (it saves one
		// after each Append). Leftovers go at Commit or Abort.
		if err := m.pieceObject(piece{Index: old.Index, Seq: old.Seq}).Delete(ctx); err != nil && !errors.Is(err, gcs.ErrObjectNotExist) {
			m.d.logger.Debug("deleting an old multipart tail", "key", st.Key, "error", err)
		}
	}
	m.st = st
	return took, nil
}

// writePiece writes the next part object: the current tail, if any,
// followed by up to partSize bytes in total from br, assembled in one
// chunk buffer and sent in one request. It returns how many bytes of br it
// took and updates st's CRC.
func (m *multipart) writePiece(ctx context.Context, st *handleState, br io.Reader, partSize int64) (int64, piece, error) {
	p := piece{Index: len(st.Parts), Seq: st.Seq}
	bp := m.d.getBuf()
	defer m.d.putBuf(bp)
	buf := (*bp)[:partSize]
	head := 0
	if t := st.Tail; t != nil {
		if err := m.readTail(ctx, *t, buf[:t.Size]); err != nil {
			return 0, p, err
		}
		head = int(t.Size)
	}
	n, err := io.ReadFull(br, buf[head:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return int64(n), p, err
	}
	attrs, err := m.d.uploadBytes(ctx, m.pieceObject(p), buf[:head+n], "")
	if err != nil {
		return int64(n), p, err
	}
	p.Gen, p.Size = attrs.Generation, int64(head+n)
	st.CRC = crc32.Update(st.CRC, castagnoli, buf[head:head+n])
	return int64(n), p, nil
}

// readTail loads the tail object into p (len(p) == its size).
func (m *multipart) readTail(ctx context.Context, t piece, p []byte) error {
	r, err := m.pieceObject(t).NewReader(ctx)
	if err != nil {
		return m.goneError("append", err)
	}
	defer r.Close()
	if r.Attrs.Size != t.Size {
		return fmt.Errorf("%w: tail object is %d bytes, handle says %d", storage.ErrUploadGone, r.Attrs.Size, t.Size)
	}
	_, err = io.ReadFull(r, p)
	return err
}
