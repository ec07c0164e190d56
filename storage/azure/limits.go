package azure

import (
	"encoding/base64"
	"fmt"
	"slices"

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
		return fmt.Sprintf("must be at least %d bytes (about 10.24 MiB; 11MiB or more): %d blocks of %d bytes hold only %d, and blobs of %s must fit",
			int64(MinBlockSize), MaxCommittedBlocks, n, n*MaxCommittedBlocks, storage.Size(MinBlobSize))
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

// tailSeg is a tail segment for the arithmetic: its size and level.
type tailSeg struct {
	size  int64
	level int
}

// tailPlan is the arithmetic of one Append: appending n bytes to a tail
// of segs stages `blocks` full blocks and leaves the tail segs; rewritten
// counts earlier tail bytes written again by a merge. Append follows the
// same rules (storage.MergeStart) while it streams; this form lets tests run a
// 500 GiB upload in milliseconds.
type tailPlan struct {
	blocks    int64
	segs      []tailSeg
	rewritten int64
}

func (l limits) plan(segs []tailSeg, n int64) tailPlan {
	var tail int64
	levels := make([]int, len(segs))
	for i, s := range segs {
		tail += s.size
		levels[i] = s.level
	}
	total := tail + n
	switch full := total / l.blockSize; {
	case n == 0:
		return tailPlan{segs: segs}
	case full > 0:
		p := tailPlan{blocks: full}
		if rest := total % l.blockSize; rest > 0 {
			p.segs = []tailSeg{{size: rest}}
		}
		return p
	}
	j, level := storage.MergeStart(levels)
	merged := tailSeg{size: n, level: level}
	var rewritten int64
	for _, s := range segs[j:] {
		merged.size += s.size
		rewritten += s.size
	}
	return tailPlan{segs: append(slices.Clip(segs[:j]), merged), rewritten: rewritten}
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
