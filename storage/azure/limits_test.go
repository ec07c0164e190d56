package azure

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"testing"

	"github.com/stratus-registry/stratus/storage"
)

// TestBlockSizeReaches500GiB: Azurite enforces no block limit, so the
// arithmetic is checked here. With the default and the smallest allowed
// block_size, a blob of 500 GiB sent in 1 MiB PATCHes stays within 50,000
// committed and 100,000 uncommitted blocks, every block but the last is
// full, and no tail byte is written more than twice.
func TestBlockSizeReaches500GiB(t *testing.T) {
	const patch = 1 << 20
	for _, bs := range []int64{DefaultBlockSize, MinBlockSize, 11 << 20, 64 << 20, MaxBlockSize} {
		if msg := checkBlockSize(bs); msg != "" {
			t.Fatalf("block_size %d rejected: %s", bs, msg)
		}
		l := limits{blockSize: bs, maxBlocks: MaxCommittedBlocks}
		maxSegs := 0
		if l.maxBlobSize() < MinBlobSize {
			t.Fatalf("block_size %d: largest blob %d < 500 GiB", bs, l.maxBlobSize())
		}
		var blocks, segWritten int64
		var segs []tailSeg
		for size := int64(0); size < MinBlobSize; size += patch {
			p := l.plan(segs, patch)
			blocks += p.blocks
			// Bytes that land in a segment: the remainder after full
			// blocks, or the whole patch, plus any merge.
			if p.blocks > 0 {
				segWritten += tailOf(p.segs)
			} else {
				segWritten += patch + p.rewritten
			}
			segs = p.segs
			if !l.fits(blocks, tailOf(segs)) {
				t.Fatalf("block_size %d: a write of %d bytes needs more than %d blocks", bs, size+patch, MaxCommittedBlocks)
			}
			if len(segs) > storage.MaxTailSegments {
				t.Fatalf("block_size %d: %d tail segments", bs, len(segs))
			}
			maxSegs = max(maxSegs, len(segs))
		}
		tail := tailOf(segs)
		final := blocks
		if tail > 0 {
			final++
		}
		// A write stages block i under one id however often it is
		// retried, so the uncommitted count is the committed one, plus
		// at most one block of a failed Append past the handle.
		if final > MaxCommittedBlocks || final+1 > MaxUncommittedBlocks {
			t.Fatalf("block_size %d: %d blocks for 500 GiB", bs, final)
		}
		if want := (int64(MinBlobSize) + bs - 1) / bs; final != want {
			t.Errorf("block_size %d: %d blocks; want %d (every block but the last full)", bs, final, want)
		}
		// One write per byte, plus one per merge level: none at the
		// default, at most log16(4000) < 3 at the largest block.
		amp := float64(segWritten) / float64(MinBlobSize)
		if (bs == DefaultBlockSize && amp > 1) || amp > 3 {
			t.Errorf("block_size %d: tail bytes written %.2fx the blob", bs, amp)
		}
		t.Logf("block_size %s: 500 GiB in 1 MiB PATCHes = %d blocks (limit %d), largest blob %s, tail bytes written %.2fx, at most %d segments",
			sizeString(bs), final, MaxCommittedBlocks, sizeString(l.maxBlobSize()), amp, maxSegs)
	}
}

func sizeString(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

func TestBlockSizeBounds(t *testing.T) {
	for _, bs := range []int64{0, 1 << 20, 8 << 20, 10 << 20, MinBlockSize - 1, MaxBlockSize + 1, 5000 << 20} {
		if checkBlockSize(bs) == "" {
			t.Errorf("block_size %d accepted; 50,000 blocks of it hold %d bytes (or it is over 4000 MiB)", bs, bs*MaxCommittedBlocks)
		}
	}
	if MinBlockSize*MaxCommittedBlocks < MinBlobSize || (MinBlockSize-1)*MaxCommittedBlocks >= MinBlobSize {
		t.Errorf("MinBlockSize %d is not the smallest block size for 500 GiB", MinBlockSize)
	}
}

func tailOf(segs []tailSeg) int64 {
	var n int64
	for _, s := range segs {
		n += s.size
	}
	return n
}

// TestPlan checks the tail rules one step at a time.
func TestPlan(t *testing.T) {
	l := limits{blockSize: 1000, maxBlocks: 3}
	fifteen := func(size int64, level int) []tailSeg {
		s := make([]tailSeg, storage.SegmentFanout-1)
		for i := range s {
			s[i] = tailSeg{size: size, level: level}
		}
		return s
	}
	two := []tailSeg{{size: 20}, {size: 10}}
	tests := []struct {
		name string
		segs []tailSeg
		n    int64
		want tailPlan
	}{
		{"nothing", two, 0, tailPlan{segs: two}},
		{"small append adds a segment", two, 10, tailPlan{segs: []tailSeg{{size: 20}, {size: 10}, {size: 10}}}},
		{"fills a block exactly", two, 970, tailPlan{blocks: 1}},
		{"fills a block and leaves a segment", two, 975, tailPlan{blocks: 1, segs: []tailSeg{{size: 5}}}},
		{"several blocks", nil, 3500, tailPlan{blocks: 3, segs: []tailSeg{{size: 500}}}},
		{"sixteenth segment merges its level", fifteen(2, 0), 2, tailPlan{segs: []tailSeg{{size: 32, level: 1}}, rewritten: 30}},
		{"merges cascade", append(fifteen(32, 1), fifteen(2, 0)...), 2,
			tailPlan{segs: []tailSeg{{size: 512, level: 2}}, rewritten: 510}},
		{"higher levels stay", append([]tailSeg{{size: 512, level: 2}}, fifteen(2, 0)...), 2,
			tailPlan{segs: []tailSeg{{size: 512, level: 2}, {size: 32, level: 1}}, rewritten: 30}},
	}
	for _, tt := range tests {
		if got := l.plan(tt.segs, tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: plan(%v, %d) = %+v; want %+v", tt.name, tt.segs, tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		blocks, tail int64
		want         bool
	}{{3, 0, true}, {2, 999, true}, {3, 1, false}, {4, 0, false}} {
		if got := l.fits(tt.blocks, tt.tail); got != tt.want {
			t.Errorf("fits(%d, %d) = %v; want %v", tt.blocks, tt.tail, got, tt.want)
		}
	}
}

// TestBlockIDs: ids are base64, all the same length (Azure rejects a blob
// whose block ids differ in length), distinct and deterministic.
func TestBlockIDs(t *testing.T) {
	id := storage.NewWriteID()
	seen := map[string]bool{}
	var n int
	for _, i := range []int{0, 1, 9, 10, 49_999, 99_999, 9_999_999} {
		b := blockID(id, i)
		raw, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			t.Fatalf("block id %q is not base64: %v", b, err)
		}
		if len(raw) != blockIDLen || len(raw) > 64 {
			t.Errorf("block id %d decodes to %d bytes; want %d (Azure allows 64)", i, len(raw), blockIDLen)
		}
		if n == 0 {
			n = len(b)
		} else if len(b) != n {
			t.Errorf("block id %d has length %d; the first had %d", i, len(b), n)
		}
		if seen[b] {
			t.Errorf("block id %d repeats", i)
		}
		seen[b] = true
		if blockID(id, i) != b {
			t.Errorf("block id %d is not deterministic", i)
		}
	}
	if blockID(storage.NewWriteID(), 0) == blockID(id, 0) {
		t.Errorf("two writes share a block id")
	}
}
