package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/stratus-registry/stratus/storage"
)

// A resumable write stages blocks on its target blob and commits them with
// one Put Block List. Uncommitted blocks are invisible: Stat, Reader and
// List see the old blob (or none) until Commit.
//
// Block i of write W has the id base64("W-<i, 7 digits>"), so the handle
// only needs W and the block count to name every staged block, and a
// retried or resumed stage of block i replaces the earlier attempt.
//
// Every block but the last is one whole block buffer (block_size), so that
// 50,000 blocks reach 50,000 x block_size even when clients PATCH 1 MiB at
// a time. Bytes that do not fill a block yet (the tail) are kept in small
// "segment" blobs under _stratus/uploads/W/, one per Append: when a block
// fills, the segments are read back into the buffer, the block is staged
// and the segments are deleted one Append later. So every byte is written
// to a segment once (plus once per merge level, see storage.MergeStart: none for
// 1 MiB PATCHes into 16 MiB blocks), read back once, and staged once;
// memory is one block buffer.
//
// A marker blob _stratus/uploads/W/session names the target key. It makes
// an aborted or committed write fail to resume, and lets the reaper find
// stale writes and their blocks.

// handleVersion changes when the handle format does.
const handleVersion = 1

// handleState is everything needed to continue a write; it is the handle.
type handleState struct {
	storage.HandleHeader
	Account   string `json:"account"`
	Container string `json:"container"`
	// Blocks counts the full blocks staged: ids blockID(ID, 0..Blocks-1).
	Blocks     int       `json:"blocks"`
	BlockBytes int64     `json:"block_bytes"`
	Segs       []segment `json:"segs,omitempty"` // the tail, oldest first
	// Seq is the last segment number used; segments below Clean have
	// been deleted.
	Seq   int64 `json:"seq"`
	Clean int64 `json:"clean"`
	Size  int64 `json:"size"`
}

// segment is one tail segment; the tail rules are shared with S3.
type segment = storage.TailSegment

// marker is the content of a write's session blob.
type marker struct {
	Key string `json:"key"`
}

type multipart struct {
	d   *Driver
	st  handleState
	err error
}

func (d *Driver) uploadsPrefix() string        { return d.root + storage.InternalDir + "uploads/" }
func (d *Driver) writePrefix(id string) string { return d.uploadsPrefix() + id + "/" }
func (d *Driver) markerName(id string) string  { return d.writePrefix(id) + "session" }
func (d *Driver) segName(id string, n int64) string {
	return fmt.Sprintf("%sseg-%010d", d.writePrefix(id), n)
}

// NewMultipart implements storage.Driver. The marker is written now, so
// that Abort is visible to every later resume.
func (d *Driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	if err := d.checkKey("multipart", key); err != nil {
		return nil, err
	}
	m := &multipart{d: d, st: handleState{
		HandleHeader: storage.NewHandleHeader(handleVersion, driverName, d.root, key),
		Account:      d.account, Container: d.cfg.Container, Clean: 1,
	}}
	if err := m.writeMarker(ctx); err != nil {
		return nil, d.opError("multipart", key, err)
	}
	return m, nil
}

func (m *multipart) writeMarker(ctx context.Context) error {
	b, err := json.Marshal(marker{Key: m.st.Key})
	if err != nil {
		return err
	}
	_, err = m.d.blockBlob(m.d.markerName(m.st.ID)).Upload(ctx, streaming.NopCloser(bytes.NewReader(b)), nil)
	return err
}

// ResumeMultipart implements storage.Driver. It checks that the write's
// marker is still there, so an aborted or committed write fails here
// rather than after more data was sent.
func (d *Driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	var st handleState
	if err := storage.DecodeHandle(driverName, handle, &st, &st.HandleHeader, func() error { return d.checkHandle(&st) }); err != nil {
		return nil, err
	}
	if _, err := d.stat(ctx, d.markerName(st.ID)); err != nil {
		err = d.opError("resume", st.Key, err)
		if errors.Is(err, storage.ErrNotFound) {
			err = &storage.OpError{Op: "resume", Driver: driverName, Key: st.Key, Err: fmt.Errorf("%w: the write was committed, aborted or reaped", storage.ErrUploadGone)}
		}
		return nil, err
	}
	return &multipart{d: d, st: st}, nil
}

// checkHandle rejects handles of other drivers, accounts or formats, and
// inconsistent ones.
func (d *Driver) checkHandle(st *handleState) error {
	if err := st.Check(handleVersion, driverName, d.root); err != nil {
		return err
	}
	switch {
	case st.Account != d.account || st.Container != d.cfg.Container:
		return fmt.Errorf("handle is for account %q container %q", st.Account, st.Container)
	case st.Blocks < 0 || st.Blocks > d.lim.maxBlocks || st.BlockBytes < 0 || (st.Blocks == 0) != (st.BlockBytes == 0):
		return errors.New("invalid block count")
	case len(st.Segs) > storage.MaxTailSegments || st.Seq < 0 || st.Clean < 1 || st.Clean > st.Seq+1:
		return errors.New("invalid tail")
	}
	total := st.BlockBytes
	prev, level := st.Clean-1, 64
	for _, s := range st.Segs {
		if s.Seq <= prev || s.Seq > st.Seq || s.Size <= 0 || s.Level < 0 || s.Level > level {
			return errors.New("invalid tail segment")
		}
		prev, level = s.Seq, s.Level
		total += s.Size
	}
	if total != st.Size {
		return errors.New("size does not match blocks and tail")
	}
	return nil
}

func (m *multipart) Size() int64 { return m.st.Size }

func (m *multipart) Handle() ([]byte, error) { return json.Marshal(m.st) }

func (m *multipart) fail(op string, err error) error {
	m.err = storage.ErrWriterDone
	return m.d.opError(op, m.st.Key, err)
}

// bodyError records that the caller's stream broke (a client went away);
// that is not the store's failure.
func (m *multipart) bodyError(err error) error {
	m.err = storage.ErrWriterDone
	return &storage.OpError{Op: "append", Driver: driverName, Key: m.st.Key, Err: err}
}

func (m *multipart) limitError(st *handleState) error {
	m.err = storage.ErrWriterDone
	return &storage.OpError{Op: "append", Driver: driverName, Key: st.Key,
		Err: fmt.Errorf("blob would exceed %d blocks of %s (%s); raise storage.azure.block_size",
			m.d.lim.maxBlocks, storage.Size(m.d.lim.blockSize), storage.Size(m.d.lim.maxBlobSize()))}
}

// Append implements storage.Multipart.
func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	if m.err != nil {
		return 0, &storage.OpError{Op: "append", Driver: driverName, Key: m.st.Key, Err: m.err}
	}
	st := m.st
	st.Segs = slices.Clip(st.Segs) // appends must not touch m.st's array
	start := st.Seq + 1            // the oldest segment this Append may still need
	if len(st.Segs) > 0 {
		start = st.Segs[0].Seq
	}
	tail := storage.SegmentsSize(st.Segs)

	// Most appends are one chunk smaller than a block: take them in a
	// small buffer, so that many concurrent small pushes do not each hold
	// a block-sized one.
	sp := m.d.getSmallBuf()
	defer m.d.putSmallBuf(sp)
	n, rerr := io.ReadFull(storage.ContextReader(ctx, r), *sp)
	switch {
	case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
		if n == 0 {
			return 0, nil
		}
		if j, _ := storage.MergeStart(storage.Levels(st.Segs)); tail+int64(n) < m.d.lim.blockSize && j == len(st.Segs) {
			if !m.d.lim.fits(int64(st.Blocks), tail+int64(n)) {
				return 0, m.limitError(&st)
			}
			if err := m.writeSegment(ctx, &st, (*sp)[:n], 0); err != nil {
				return 0, m.fail("append", err)
			}
			st.Size += int64(n)
			m.finish(ctx, &st, start)
			return int64(n), nil
		}
	case rerr != nil:
		return int64(n), m.bodyError(rerr)
	}
	src := io.MultiReader(bytes.NewReader((*sp)[:n]), storage.ContextReader(ctx, r))
	return m.appendBlocks(ctx, st, tail, src, start)
}

// appendBlocks streams src into block buffers behind the tail, staging
// every full one, and leaves the rest as a new tail segment.
func (m *multipart) appendBlocks(ctx context.Context, st handleState, tail int64, src io.Reader, start int64) (int64, error) {
	bp := m.d.getBuf()
	defer m.d.putBuf(bp)
	buf := *bp
	if tail >= int64(len(buf)) {
		// Written by an instance with a larger block_size: the tail does
		// not fit our buffer, but it is big enough to be a block by itself.
		if err := m.tailToBlock(ctx, &st, tail); err != nil {
			return 0, err
		}
		tail = 0
	}
	n, rerr := io.ReadFull(src, buf[tail:])
	took, filled := int64(n), tail+int64(n)
	if rerr == nil {
		if err := m.loadTail(ctx, st.Segs, buf[:tail]); err != nil {
			return 0, m.fail("append", err)
		}
	}
	staged := false
	for rerr == nil { // the buffer is full: it is a block
		if st.Blocks >= m.d.lim.maxBlocks {
			return took, m.limitError(&st)
		}
		if err := m.stageBlock(ctx, st.Key, blockID(st.ID, st.Blocks), buf[:filled]); err != nil {
			return took, m.fail("append", err)
		}
		st.Blocks++
		st.BlockBytes += filled
		st.Segs, staged = nil, true
		n, rerr = io.ReadFull(src, buf)
		took += int64(n)
		filled = int64(n)
	}
	if rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		return took, m.bodyError(rerr)
	}
	// Either way the buffer now holds the whole new tail.
	if !m.d.lim.fits(int64(st.Blocks), filled) {
		return took, m.limitError(&st)
	}
	var err error
	switch {
	case staged && filled == 0:
		err = m.writeMarker(ctx) // no new segment: record the activity for the reaper
	case staged:
		err = m.writeSegment(ctx, &st, buf[:filled], 0)
	default:
		// The new bytes join the tail, merged with its newest segments
		// when mergeStart says so.
		j, level := storage.MergeStart(storage.Levels(st.Segs))
		from := tail - storage.SegmentsSize(st.Segs[j:])
		if err = m.loadTail(ctx, st.Segs[j:], buf[from:tail]); err == nil {
			st.Segs = slices.Clone(st.Segs[:j]) // m.st keeps its own array
			err = m.writeSegment(ctx, &st, buf[from:filled], level)
		}
	}
	if err != nil {
		return took, m.fail("append", err)
	}
	st.Size += took
	m.finish(ctx, &st, start)
	return took, nil
}

// finish makes st the writer's state and deletes the segments no handle
// the caller can still hold refers to: those before the tail this Append
// started from (the caller saves a handle after each Append, and keeps the
// one it started from in case saving the new one fails).
func (m *multipart) finish(ctx context.Context, st *handleState, start int64) {
	if st.Clean < start {
		names := make([]string, 0, start-st.Clean)
		for n := st.Clean; n < start; n++ {
			names = append(names, m.d.segName(st.ID, n))
		}
		// One batch request; on failure the next Append, Commit or the
		// reaper tries again.
		if err := m.d.deleteBlobs(ctx, names); err != nil {
			m.d.logger.Debug("deleting old tail segments", "key", st.Key, "error", err)
		} else {
			st.Clean = start
		}
	}
	m.st = *st
}

// writeSegment writes data as the next tail segment. A failed Append that
// wrote the same number is overwritten: no handle names it.
func (m *multipart) writeSegment(ctx context.Context, st *handleState, data []byte, level int) error {
	st.Seq++
	_, err := m.d.blockBlob(m.d.segName(st.ID, st.Seq)).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), nil)
	if err != nil {
		return err
	}
	st.Segs = append(st.Segs, segment{Seq: st.Seq, Size: int64(len(data)), Level: level})
	return nil
}

// loadTail reads the segments into p (len(p) is their total size), a few
// at a time.
func (m *multipart) loadTail(ctx context.Context, segs []segment, p []byte) error {
	return storage.TailIO{
		Concurrency: m.d.cfg.UploadConcurrency,
		Read: func(ctx context.Context, seq int64, dst []byte) error {
			return m.d.readInto(ctx, m.d.segName(m.st.ID, seq), dst)
		},
	}.Load(ctx, segs, p)
}

// readInto reads the whole blob name into p, which must be its size.
func (d *Driver) readInto(ctx context.Context, name string, p []byte) error {
	resp, err := d.blockBlob(name).DownloadStream(ctx, nil)
	if err != nil {
		if errors.Is(classify(err), storage.ErrNotFound) {
			return fmt.Errorf("%w: tail segment %s missing", storage.ErrUploadGone, name)
		}
		return err
	}
	defer resp.Body.Close()
	if deref(resp.ContentLength) != int64(len(p)) {
		return fmt.Errorf("%w: tail segment %s is %d bytes, handle says %d", storage.ErrUploadGone, name, deref(resp.ContentLength), len(p))
	}
	_, err = io.ReadFull(resp.Body, p)
	return err
}

// tailToBlock stages a tail of size bytes, larger than our block buffer,
// as a block of its own (a temporary buffer: this only happens while
// block_size shrinks across a rolling restart).
func (m *multipart) tailToBlock(ctx context.Context, st *handleState, size int64) error {
	if st.Blocks >= m.d.lim.maxBlocks {
		return m.limitError(st)
	}
	buf := make([]byte, size)
	if err := m.loadTail(ctx, st.Segs, buf); err != nil {
		return m.fail("append", err)
	}
	if err := m.stageBlock(ctx, st.Key, blockID(st.ID, st.Blocks), buf); err != nil {
		return m.fail("append", err)
	}
	st.Blocks++
	st.BlockBytes += size
	st.Segs = nil
	return nil
}

// stageBlock puts one block on the target blob. The SDK retries it as is:
// staging the same id twice keeps the last copy.
func (m *multipart) stageBlock(ctx context.Context, key, id string, data []byte) error {
	_, err := m.d.blockBlob(m.d.blobName(key)).StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), nil)
	return err
}

// Commit implements storage.Multipart. A failed Commit may be retried, and
// one whose answer was lost is recognised by its block list.
func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	if m.err != nil {
		return storage.Info{}, &storage.OpError{Op: "commit", Driver: driverName, Key: m.st.Key, Err: m.err}
	}
	st := m.st
	ids := blockIDs(st.ID, st.Blocks)
	tail := storage.SegmentsSize(st.Segs)
	if tail > 0 {
		if !m.d.lim.fits(int64(st.Blocks), tail) {
			return storage.Info{}, m.limitError(&st)
		}
		ids = append(ids, blockID(st.ID, st.Blocks))
		if err := m.stageTail(ctx, st, tail); err != nil {
			if errors.Is(err, context.Canceled) {
				return storage.Info{}, m.d.opError("commit", st.Key, err)
			}
			// Gone segments may mean an earlier Commit did it all.
			return m.committed(ctx, ids, err)
		}
	}
	bb := m.d.blockBlob(m.d.blobName(st.Key))
	resp, err := bb.CommitBlockList(ctx, ids, nil)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return storage.Info{}, m.d.opError("commit", st.Key, err)
		}
		return m.committed(ctx, ids, err)
	}
	info := storage.Info{Key: st.Key, Size: st.Size, ModTime: deref(resp.LastModified), ETag: etagString(resp.ETag)}
	return m.done(ctx, info), nil
}

// stageTail reads the tail into a block buffer and stages it as the last
// block.
func (m *multipart) stageTail(ctx context.Context, st handleState, tail int64) error {
	var buf []byte
	if tail <= m.d.lim.blockSize {
		bp := m.d.getBuf()
		defer m.d.putBuf(bp)
		buf = (*bp)[:tail]
	} else {
		buf = make([]byte, tail) // see tailToBlock
	}
	if err := m.loadTail(ctx, st.Segs, buf); err != nil {
		return err
	}
	return m.stageBlock(ctx, st.Key, blockID(st.ID, st.Blocks), buf)
}

// committed checks whether the blob at the key is exactly this write:
// its committed block list is ids (which carry this write's random id) and
// its size is the write's. Then a Commit whose answer was lost, or that
// is retried after success, reports success. When the check itself fails,
// its (transient) error replaces failErr: the caller must retry rather
// than give up on a write that may be committed.
func (m *multipart) committed(ctx context.Context, ids []string, failErr error) (storage.Info, error) {
	info, same, err := m.d.sameBlocks(ctx, m.st.Key, ids, m.st.Size)
	switch {
	case same:
		return m.done(ctx, info), nil
	case err != nil:
		return storage.Info{}, err
	}
	return storage.Info{}, m.d.opError("commit", m.st.Key, failErr)
}

// done finishes a committed write: the writer is spent, and its marker and
// segments go (best effort: the reaper removes leftovers).
func (m *multipart) done(ctx context.Context, info storage.Info) storage.Info {
	m.err = storage.ErrWriterDone
	if err := m.d.deleteWrite(ctx, m.st.ID); err != nil {
		m.d.logger.Warn("deleting multipart bookkeeping after commit", "key", m.st.Key, "error", err)
	}
	return info
}

// Abort implements storage.Multipart. The marker goes first, so that no
// one resumes the write while its blocks are discarded.
func (m *multipart) Abort(ctx context.Context) error {
	if err := m.d.deleteBlob(ctx, "abort", m.st.Key, m.d.markerName(m.st.ID)); err != nil {
		return err
	}
	m.err = storage.ErrWriterDone
	if err := m.d.discardBlocks(ctx, m.st.Key); err != nil {
		return m.d.opError("abort", m.st.Key, err)
	}
	if err := m.d.deleteWrite(ctx, m.st.ID); err != nil {
		return m.d.opError("abort", m.st.Key, err)
	}
	return nil
}
