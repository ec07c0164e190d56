package azure

import (
	"encoding/base64"
	"fmt"

	"github.com/stratus-registry/stratus/storage"
)

// Azure's block blob limits (service version 2019-12-12 and later). Azurite
// enforces none of them, so the arithmetic below has unit tests.
const (
	// MaxCommittedBlocks is how many blocks a committed block list holds.
	MaxCommittedBlocks = 50_000
	// MaxUncommittedBlocks is how many uncommitted blocks a blob may carry;
	// staging one more fails with 409 BlockCountExceedsLimit.
	MaxUncommittedBlocks = 100_000
	// MaxBlockSize is the largest block Put Block accepts.
	MaxBlockSize = 4000 << 20
	// MinBlobSize is what every configuration must be able to store, even
	// from a client that sends 1 MiB PATCHes: tails are buffered up to a
	// whole block, so the block count is size / block_size.
	MinBlobSize = 500 << 30
	// MinBlockSize is the smallest block_size that reaches MinBlobSize
	// within MaxCommittedBlocks (10,737,419 bytes, about 10.24 MiB).
	MinBlockSize = (MinBlobSize + MaxCommittedBlocks - 1) / MaxCommittedBlocks
	// maxSegments bounds the tail segments of one write: past it, the next
	// small Append rewrites the tail as one segment.
	maxSegments = 32
)

// limits are the numbers the writer works with: Azure's in production,
// smaller ones in tests that check what happens at the limits.
type limits struct {
	blockSize int64
	maxBlocks int
}

func defaultLimits(cfg Config) limits {
	bs := int64(cfg.BlockSize)
	if bs == 0 {
		bs = DefaultBlockSize
	}
	return limits{blockSize: bs, maxBlocks: MaxCommittedBlocks}
}

// maxBlobSize is the largest blob a write can commit: every block but the
// last is exactly one block buffer.
func (l limits) maxBlobSize() int64 { return int64(l.maxBlocks) * l.blockSize }

// checkBlockSize returns why n is not a usable block_size, or "".
func checkBlockSize(n int64) string {
	switch {
	case n < MinBlockSize:
		return fmt.Sprintf("must be at least %d bytes (%s): %d blocks of %s hold only %s, and blobs of %s must fit",
			int64(MinBlockSize), storage.Size(11<<20), MaxCommittedBlocks, storage.Size(n), storage.Size(n*MaxCommittedBlocks), storage.Size(MinBlobSize))
	case n > MaxBlockSize:
		return fmt.Sprintf("must be at most %s (Azure's largest block)", storage.Size(MaxBlockSize))
	}
	return ""
}

// blockIDLen is the length of a block id before base64: a 32-hex write id,
// a dash and a 7-digit block index. Azure wants every block id of a blob
// to have the same length; deriving them from the index makes them
// deterministic, so a retried or resumed stage of block i replaces the
// earlier attempt instead of adding a block.
const blockIDLen = 32 + 1 + 7

// blockID is the id of block i of the write named writeID.
func blockID(writeID string, i int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%07d", writeID, i))
}

// blockIDs lists the ids of blocks 0..n-1.
func blockIDs(writeID string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = blockID(writeID, i)
	}
	return ids
}

// tailPlan is the arithmetic of one Append: with tail bytes buffered in
// segs segments, appending n bytes stages `blocks` full blocks and leaves
// a tail of `tail` bytes in `segments` segments; rewritten is how many
// earlier tail bytes are written again (only when the segment count would
// pass maxSegments). Append follows the same rules while it streams; this
// form lets tests run a 500 GiB upload in milliseconds.
type tailPlan struct {
	blocks    int64
	tail      int64
	segments  int
	rewritten int64
}

func (l limits) plan(tail int64, segs int, n int64) tailPlan {
	total := tail + n
	full := total / l.blockSize
	rest := total % l.blockSize
	switch {
	case n == 0:
		return tailPlan{tail: tail, segments: segs}
	case full > 0:
		p := tailPlan{blocks: full, tail: rest}
		if rest > 0 {
			p.segments = 1
		}
		return p
	case segs < maxSegments:
		return tailPlan{tail: total, segments: segs + 1}
	default:
		return tailPlan{tail: total, segments: 1, rewritten: tail}
	}
}

// fits reports whether a write of blocks full blocks and a tail can still
// be committed: the tail becomes one more block at Commit.
func (l limits) fits(blocks int64, tail int64) bool {
	n := blocks
	if tail > 0 {
		n++
	}
	return n <= int64(l.maxBlocks)
}
