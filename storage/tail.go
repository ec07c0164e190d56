package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sync/errgroup"
)

// The drivers whose stores want every part but the last to be one whole
// part buffer (S3 parts, Azure blocks) keep the bytes that do not fill a
// part yet, the tail, as small "segment" objects of their own, one per
// Append, and send a part only when the tail and the stream fill the part
// buffer: the segments are read back into it, the part is sent, and the
// segments are deleted one Append later. Every byte is written to a
// segment once (plus once per merge level, see MergeStart: none for 1 MiB
// appends into parts of up to 16 MiB), read back once and sent once, and
// memory is one part buffer. Segment n of a write has a name the driver
// derives from the write's id and n, so a retried Append that failed after
// writing segment n overwrites it: no saved handle names it.

// SegmentFanout is how many tail segments of one level are merged into one
// of the next level (see MergeStart).
const SegmentFanout = 16

// MaxTailSegments bounds the segments a handle may list: 15 of each level,
// and levels stay below log16(5 GiB) = 8.
const MaxTailSegments = 128

// TailSegment is one segment object of a tail.
type TailSegment struct {
	Seq   int64 `json:"n"`
	Size  int64 `json:"size"`
	Level int   `json:"l,omitempty"` // see MergeStart
}

// Tail is the part of a resumable write's handle that names its segments.
// Drivers embed it in their handle state, so its JSON fields are flat.
type Tail struct {
	Segs []TailSegment `json:"segs,omitempty"` // oldest first
	// Seq is the last segment number used; segments below Clean have
	// been deleted.
	Seq   int64 `json:"seq"`
	Clean int64 `json:"clean"`
}

// NewTail is the tail of a new write.
func NewTail() Tail { return Tail{Clean: 1} }

// Size is the number of bytes in the tail.
func (t *Tail) Size() int64 { return SegmentsSize(t.Segs) }

// SegmentsSize adds up the sizes of segs.
func SegmentsSize(segs []TailSegment) int64 {
	var n int64
	for _, s := range segs {
		n += s.Size
	}
	return n
}

// Levels lists the segments' levels, oldest first.
func Levels(segs []TailSegment) []int {
	l := make([]int, len(segs))
	for i, s := range segs {
		l[i] = s.Level
	}
	return l
}

// Check reports what is inconsistent in a tail read back from a handle.
func (t *Tail) Check() error {
	if len(t.Segs) > MaxTailSegments || t.Seq < 0 || t.Clean < 1 || t.Clean > t.Seq+1 {
		return errors.New("invalid tail")
	}
	prev, level := t.Clean-1, 64
	for _, s := range t.Segs {
		if s.Seq <= prev || s.Seq > t.Seq || s.Size <= 0 || s.Level < 0 || s.Level > level {
			return errors.New("invalid tail segment")
		}
		prev, level = s.Seq, s.Level
	}
	return nil
}

// Start is the oldest segment number an Append beginning from t may still
// need; the segments before it are in no handle the caller can still hold
// once that Append succeeds (it saves a handle after each Append, and
// keeps the one it started from in case saving the new one fails).
func (t *Tail) Start() int64 {
	if len(t.Segs) > 0 {
		return t.Segs[0].Seq
	}
	return t.Seq + 1
}

// Stale lists the segment numbers below start not yet deleted. Once the
// driver has deleted them it calls Cleaned(start).
func (t *Tail) Stale(start int64) []int64 {
	var seqs []int64
	for n := t.Clean; n < start; n++ {
		seqs = append(seqs, n)
	}
	return seqs
}

// Cleaned records that every segment below start is deleted.
func (t *Tail) Cleaned(start int64) { t.Clean = max(t.Clean, start) }

// MergeStart decides how a new level-0 tail segment joins a tail whose
// segments (oldest first) have the given levels: segments levels[j:] and
// the new bytes are written as one segment of the returned level
// (j == len(levels) and level 0: no merge). Like a base-16 counter,
// SegmentFanout segments of one level become one of the next, so levels
// never increase towards the newest segment, a tail has at most 15
// segments per level, and a tail byte is rewritten at most once per level:
// log16(part size / append size) times.
func MergeStart(levels []int) (j, level int) {
	j = len(levels)
	for {
		run := 0
		for k := j - 1; k >= 0 && levels[k] == level; k-- {
			run++
		}
		// The run plus what merges into it (the new segment, or the
		// merged run of the level below) makes SegmentFanout.
		if run+1 < SegmentFanout {
			return j, level
		}
		j -= run
		level++
	}
}

// TailIO reads and writes one write's segment objects.
type TailIO struct {
	// Concurrency is how many segments are read at once.
	Concurrency int
	// Read reads the whole segment seq into p, which is its size; a
	// missing or differently sized segment is ErrUploadGone.
	Read func(ctx context.Context, seq int64, p []byte) error
	// Write writes data as segment seq, replacing any earlier attempt.
	Write func(ctx context.Context, seq int64, data []byte) error
	// SendPart sends data as the write's next part; data is reused once it
	// returns.
	SendPart func(ctx context.Context, data []byte) error
}

// Load reads segs, back to back, into p (len(p) is their total size), a
// few at a time.
func (tio TailIO) Load(ctx context.Context, segs []TailSegment, p []byte) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(tio.Concurrency, 1))
	off := int64(0)
	for _, s := range segs {
		dst := p[off : off+s.Size]
		off += s.Size
		g.Go(func() error { return tio.Read(gctx, s.Seq, dst) })
	}
	return g.Wait()
}

// WriteSegment writes data as the next segment of t, of the given level.
func (tio TailIO) WriteSegment(ctx context.Context, t *Tail, data []byte, level int) error {
	t.Seq++
	if err := tio.Write(ctx, t.Seq, data); err != nil {
		return err
	}
	t.Segs = append(t.Segs, TailSegment{Seq: t.Seq, Size: int64(len(data)), Level: level})
	return nil
}

// AppendSmall takes a whole Append of data (read into a small buffer) when
// it joins the tail as a segment of its own: the tail stays below
// partSize and no merge is due. It reports whether it did; a failure is an
// *AppendError.
func (tio TailIO) AppendSmall(ctx context.Context, t *Tail, data []byte, partSize int64) (bool, error) {
	if j, _ := MergeStart(Levels(t.Segs)); j != len(t.Segs) || t.Size()+int64(len(data)) >= partSize {
		return false, nil
	}
	if err := tio.WriteSegment(ctx, t, data, 0); err != nil {
		return false, &AppendError{Err: err}
	}
	return true, nil
}

// AppendError is a failed Append of a tail: Body tells whether the caller's
// stream broke (a client went away) rather than the store.
type AppendError struct {
	Body bool
	Err  error
}

func (e *AppendError) Error() string { return e.Err.Error() }
func (e *AppendError) Unwrap() error { return e.Err }

// Append streams src behind the tail t into buf (one part buffer): each
// time the tail and the stream fill the buffer, it is a part; what is
// left over becomes the tail, merged with its newest segments when
// MergeStart says so. It returns the bytes taken from src and whether a
// part was sent; t is only meaningful when err is nil. A failure is an
// *AppendError.
func (tio TailIO) Append(ctx context.Context, t *Tail, buf []byte, src io.Reader) (took int64, sent bool, err error) {
	t.Segs = slices.Clip(t.Segs) // the caller's copy keeps its own array
	tail := t.Size()
	if tail >= int64(len(buf)) {
		// Written by an instance with a larger part size: the tail does
		// not fit our buffer, but it is big enough to be a part itself.
		if err := tio.tailToPart(ctx, t, tail); err != nil {
			return 0, false, &AppendError{Err: err}
		}
		tail, sent = 0, true
	}
	n, full, rerr := readFull(src, buf[tail:])
	took, filled := int64(n), tail+int64(n)
	if full {
		if err := tio.Load(ctx, t.Segs, buf[:tail]); err != nil {
			return took, sent, &AppendError{Err: err}
		}
	}
	for full { // the buffer is full: it is a part
		if err := tio.SendPart(ctx, buf[:filled]); err != nil {
			return took, sent, &AppendError{Err: err}
		}
		t.Segs, sent = nil, true
		n, full, rerr = readFull(src, buf)
		took += int64(n)
		filled = int64(n)
	}
	if rerr != nil {
		return took, sent, &AppendError{Body: true, Err: rerr}
	}
	switch {
	case filled == 0:
	case sent:
		err = tio.WriteSegment(ctx, t, buf[:filled], 0)
	default:
		j, level := MergeStart(Levels(t.Segs))
		from := tail - SegmentsSize(t.Segs[j:])
		if err = tio.Load(ctx, t.Segs[j:], buf[from:tail]); err == nil {
			t.Segs = slices.Clone(t.Segs[:j])
			err = tio.WriteSegment(ctx, t, buf[from:filled], level)
		}
	}
	if err != nil {
		return took, sent, &AppendError{Err: err}
	}
	return took, sent, nil
}

// readFull is io.ReadFull that tells a full p from a stream that ended
// first; err is only a failure of the stream.
func readFull(r io.Reader, p []byte) (n int, full bool, err error) {
	n, err = io.ReadFull(r, p)
	switch err {
	case nil:
		return n, true, nil
	case io.EOF, io.ErrUnexpectedEOF:
		return n, false, nil
	}
	return n, false, err
}

// Flush sends the whole tail as the last part, through buf when it fits
// (a temporary buffer otherwise, see tailToPart), and empties t.
func (tio TailIO) Flush(ctx context.Context, t *Tail, buf []byte) error {
	tail := t.Size()
	if tail > int64(len(buf)) {
		return tio.tailToPart(ctx, t, tail)
	}
	if err := tio.Load(ctx, t.Segs, buf[:tail]); err != nil {
		return err
	}
	if err := tio.SendPart(ctx, buf[:tail]); err != nil {
		return err
	}
	t.Segs = nil
	return nil
}

// tailToPart sends a tail larger than the part buffer as one part, from a
// buffer of its own: this only happens while the part size shrinks across
// a rolling restart.
func (tio TailIO) tailToPart(ctx context.Context, t *Tail, size int64) error {
	buf := make([]byte, size)
	if err := tio.Load(ctx, t.Segs, buf); err != nil {
		return err
	}
	if err := tio.SendPart(ctx, buf); err != nil {
		return fmt.Errorf("sending the tail as a part: %w", err)
	}
	t.Segs = nil
	return nil
}
