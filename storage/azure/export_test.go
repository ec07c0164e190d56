package azure

import (
	"context"
	"log/slog"
)

// NewWithLimits builds a driver with a block size and block count below
// Azure's, so that tests reach the limits with little data.
func NewWithLimits(ctx context.Context, cfg Config, logger *slog.Logger, blockSize int64, maxBlocks int) (*Driver, error) {
	return newDriver(ctx, cfg, logger, limits{blockSize: blockSize, maxBlocks: maxBlocks})
}
