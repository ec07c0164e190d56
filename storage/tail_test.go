package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/iotest"
)

// memTail is a store of one write's segments and parts, counting the bytes
// written to it.
type memTail struct {
	mu       sync.Mutex
	segs     map[int64][]byte
	parts    [][]byte
	written  int64
	failNext error // the next Write or SendPart fails with it
}

func (s *memTail) io() TailIO {
	return TailIO{
		Concurrency: 2,
		Read: func(_ context.Context, seq int64, p []byte) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			b, ok := s.segs[seq]
			if !ok || len(b) != len(p) {
				return fmt.Errorf("%w: segment %d", ErrUploadGone, seq)
			}
			copy(p, b)
			return nil
		},
		Write: func(_ context.Context, seq int64, data []byte) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if err := s.takeFailure(); err != nil {
				return err
			}
			s.segs[seq] = bytes.Clone(data)
			s.written += int64(len(data))
			return nil
		},
		SendPart: func(_ context.Context, data []byte) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if err := s.takeFailure(); err != nil {
				return err
			}
			s.parts = append(s.parts, bytes.Clone(data))
			s.written += int64(len(data))
			return nil
		},
	}
}

func (s *memTail) takeFailure() error {
	err := s.failNext
	s.failNext = nil
	return err
}

// appendChunk runs one Append the way a driver does: the small path, then
// the part buffer.
func appendChunk(ctx context.Context, tio TailIO, t *Tail, chunk []byte, partSize int) error {
	if len(chunk) <= 1<<10 {
		ok, err := tio.AppendSmall(ctx, t, chunk, int64(partSize))
		if err != nil || ok {
			return err
		}
	}
	took, _, err := tio.Append(ctx, t, make([]byte, partSize), bytes.NewReader(chunk))
	if err == nil && took != int64(len(chunk)) {
		err = fmt.Errorf("took %d of %d bytes", took, len(chunk))
	}
	return err
}

func TestTailAppend(t *testing.T) {
	tests := []struct {
		name      string
		partSize  int
		chunks    []int
		maxFactor float64 // bytes written / object size, sealing included
		maxSegs   int
	}{
		{name: "1 KiB chunks into 8 KiB parts", partSize: 8 << 10, chunks: repeat(1<<10, 40), maxFactor: 1.9, maxSegs: 7},
		{name: "chunks of one part", partSize: 4 << 10, chunks: repeat(4<<10, 5), maxFactor: 1, maxSegs: 0},
		{name: "uneven chunks", partSize: 5000, chunks: []int{1, 999, 3000, 7000, 12, 4999, 5001, 1000}, maxFactor: 2.2, maxSegs: 3},
		// A segment, at most log16(4096/7) < 3 merges, the part.
		{name: "tiny chunks merge", partSize: 1 << 12, chunks: repeat(7, 600), maxFactor: 5, maxSegs: 3 * (SegmentFanout - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			store := &memTail{segs: map[int64][]byte{}}
			tio := store.io()
			tail := NewTail()
			var want []byte
			for i, n := range tt.chunks {
				chunk := make([]byte, n)
				rand.Read(chunk)
				want = append(want, chunk...)
				if err := appendChunk(ctx, tio, &tail, chunk, tt.partSize); err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
				if err := tail.Check(); err != nil {
					t.Fatalf("after append %d: %v", i, err)
				}
				if len(tail.Segs) > tt.maxSegs {
					t.Fatalf("after append %d: %d segments; want at most %d", i, len(tail.Segs), tt.maxSegs)
				}
				for _, p := range store.parts {
					if len(p) != tt.partSize {
						t.Fatalf("a part of %d bytes; want %d", len(p), tt.partSize)
					}
				}
			}
			if err := tio.Flush(ctx, &tail, make([]byte, tt.partSize)); err != nil {
				t.Fatal(err)
			}
			if got := bytes.Join(store.parts, nil); !bytes.Equal(got, want) {
				t.Fatalf("parts hold %d bytes that differ from the %d appended", len(got), len(want))
			}
			if f := float64(store.written) / float64(len(want)); f > tt.maxFactor {
				t.Errorf("wrote %.2fx the object; want at most %.2fx", f, tt.maxFactor)
			}
		})
	}
}

func repeat(n, times int) []int {
	s := make([]int, times)
	for i := range s {
		s[i] = n
	}
	return s
}

// TestTailAppendFailure: a failed Append leaves the caller's tail as it
// was, and retrying the same bytes from it overwrites what the failed
// attempt wrote (same segment numbers), so the object is still right.
func TestTailAppendFailure(t *testing.T) {
	boom := errors.New("boom")
	const partSize = 4 << 10
	tests := []struct {
		name  string
		chunk int
		body  bool // the stream fails rather than the store
	}{
		{name: "segment write fails", chunk: 1 << 10},
		{name: "part send fails", chunk: 3 << 10},
		{name: "body fails", chunk: 3 << 10, body: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			store := &memTail{segs: map[int64][]byte{}}
			tio := store.io()
			tail := NewTail()
			first := make([]byte, 2<<10)
			rand.Read(first)
			if err := appendChunk(ctx, tio, &tail, first, partSize); err != nil {
				t.Fatal(err)
			}
			saved := tail
			chunk := make([]byte, tt.chunk)
			rand.Read(chunk)

			attempt := saved
			var err error
			if tt.body {
				src := io.MultiReader(bytes.NewReader(chunk[:100]), iotest.ErrReader(boom))
				_, _, err = tio.Append(ctx, &attempt, make([]byte, partSize), src)
			} else {
				store.failNext = boom
				err = appendChunk(ctx, tio, &attempt, chunk, partSize)
			}
			var ae *AppendError
			if !errors.As(err, &ae) || !errors.Is(err, boom) || ae.Body != tt.body {
				t.Fatalf("failed append: %v; want an AppendError of boom, body %v", err, tt.body)
			}
			store.parts = nil // parts past the saved state are ignored

			retry := saved
			if err := appendChunk(ctx, tio, &retry, chunk, partSize); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if err := tio.Flush(ctx, &retry, make([]byte, partSize)); err != nil {
				t.Fatal(err)
			}
			if got, want := bytes.Join(store.parts, nil), append(bytes.Clone(first), chunk...); !bytes.Equal(got, want) {
				t.Fatalf("after the retry the parts hold %d bytes that differ from the %d appended", len(got), len(want))
			}
			for seq := range store.segs {
				if seq > retry.Seq {
					t.Errorf("segment %d of the failed attempt is beyond the retry's %d: not overwritten", seq, retry.Seq)
				}
			}
		})
	}
}

func TestMergeStart(t *testing.T) {
	tests := []struct {
		levels    []int
		wantJ     int
		wantLevel int
	}{
		{levels: nil, wantJ: 0, wantLevel: 0},
		{levels: []int{0, 0, 0}, wantJ: 3, wantLevel: 0},
		{levels: repeat(0, SegmentFanout-1), wantJ: 0, wantLevel: 1},
		{levels: append([]int{1}, repeat(0, SegmentFanout-1)...), wantJ: 1, wantLevel: 1},
		{levels: append(repeat(1, SegmentFanout-1), repeat(0, SegmentFanout-1)...), wantJ: 0, wantLevel: 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.levels), func(t *testing.T) {
			if j, level := MergeStart(tt.levels); j != tt.wantJ || level != tt.wantLevel {
				t.Errorf("MergeStart = %d, %d; want %d, %d", j, level, tt.wantJ, tt.wantLevel)
			}
		})
	}
}

func TestTailCheck(t *testing.T) {
	tests := []struct {
		name string
		tail Tail
		ok   bool
	}{
		{name: "new", tail: NewTail(), ok: true},
		{name: "two segments", tail: Tail{Segs: []TailSegment{{Seq: 3, Size: 5, Level: 1}, {Seq: 4, Size: 1}}, Seq: 4, Clean: 2}, ok: true},
		{name: "zero clean", tail: Tail{Seq: 1}},
		{name: "segment below clean", tail: Tail{Segs: []TailSegment{{Seq: 1, Size: 5}}, Seq: 2, Clean: 2}},
		{name: "segment beyond seq", tail: Tail{Segs: []TailSegment{{Seq: 3, Size: 5}}, Seq: 2, Clean: 1}},
		{name: "empty segment", tail: Tail{Segs: []TailSegment{{Seq: 1}}, Seq: 1, Clean: 1}},
		{name: "rising level", tail: Tail{Segs: []TailSegment{{Seq: 1, Size: 1}, {Seq: 2, Size: 1, Level: 1}}, Seq: 2, Clean: 1}},
		{name: "out of order", tail: Tail{Segs: []TailSegment{{Seq: 2, Size: 1}, {Seq: 1, Size: 1}}, Seq: 2, Clean: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.tail.Check(); (err == nil) != tt.ok {
				t.Errorf("Check() = %v; want ok %v", err, tt.ok)
			}
		})
	}
}
