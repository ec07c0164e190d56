package azure

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// NewWithLimits builds a driver with a block size and block count below
// Azure's, so that tests reach the limits with little data.
func NewWithLimits(ctx context.Context, cfg Config, logger *slog.Logger, blockSize int64, maxBlocks int) (*Driver, error) {
	return newDriver(ctx, cfg, logger, options{lim: limits{blockSize: blockSize, maxBlocks: maxBlocks}})
}

// NewWithToken builds a driver that authenticates with cred (as
// DefaultAzureCredential would), trusts rootCAs and connects with dial.
func NewWithToken(ctx context.Context, cfg Config, logger *slog.Logger, cred azcore.TokenCredential, rootCAs *x509.CertPool,
	dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Driver, error) {
	return newDriver(ctx, cfg, logger, options{cred: cred, rootCAs: rootCAs, dial: dial})
}

// PlanState follows a write through the arithmetic of limits.plan.
type PlanState struct {
	Blocks int64
	segs   []tailSeg
}

// PlanAppend advances s by an Append of n bytes with d's limits and
// reports whether the write still fits.
func (d *Driver) PlanAppend(s *PlanState, n int64) bool {
	p := d.lim.plan(s.segs, n)
	if !d.lim.fits(s.Blocks+p.blocks, tailOf(p.segs)) {
		return false
	}
	s.Blocks += p.blocks
	s.segs = p.segs
	return true
}

// Matches reports how a handle differs from s, or "".
func (s *PlanState) Matches(handle []byte) string {
	var st handleState
	if err := json.Unmarshal(handle, &st); err != nil {
		return err.Error()
	}
	got := make([]tailSeg, len(st.Segs))
	for k, sg := range st.Segs {
		got[k] = tailSeg{size: sg.Size, level: sg.Level}
	}
	if int64(st.Blocks) != s.Blocks || !slices.Equal(got, s.segs) {
		return fmt.Sprintf("handle has %d blocks, tail %v; the plan says %d blocks, tail %v", st.Blocks, got, s.Blocks, s.segs)
	}
	return ""
}

// BlockSizes lists the sizes of the committed and uncommitted blocks of
// the blob at key.
func (d *Driver) BlockSizes(ctx context.Context, key string) (committed, uncommitted []int64, err error) {
	bl, err := d.blockBlob(d.blobName(key)).GetBlockList(ctx, blockblob.BlockListTypeAll, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, b := range bl.CommittedBlocks {
		committed = append(committed, *b.Size)
	}
	for _, b := range bl.UncommittedBlocks {
		uncommitted = append(uncommitted, *b.Size)
	}
	return committed, uncommitted, nil
}

// Classify is classify, for table tests.
var Classify = classify
