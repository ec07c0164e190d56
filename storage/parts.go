package storage

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"
)

// PartUpload streams a whole-object write that did not fit in one buffer
// as parts of one buffer each (S3 multipart parts, Azure blocks), sent
// Concurrency at a time. It holds at most Concurrency+1 buffers, reused
// for the whole body.
type PartUpload struct {
	Concurrency int
	// MaxParts is the store's part count limit; PartSize, the buffer
	// size, names the limit in the error.
	MaxParts int
	PartSize Size
	// GetBuf and PutBuf take buffers of PartSize bytes from the driver's
	// pool and give them back.
	GetBuf func() *[]byte
	PutBuf func(*[]byte)
	// Send uploads part i (from 0) holding data, which is reused once Send
	// returns. ctx is cancelled when another part fails.
	Send func(ctx context.Context, i int, data []byte) error
}

// Run sends first (a full buffer of the body already read; Run gives it
// back with PutBuf) as part 0, then the rest of body. It returns the body's
// size and the number of parts. readErr is a failure of the body, too many
// parts, or a body that disagrees with size (-1: unknown); uploadErr is
// the first failed Send. Once ctx is done its error is uploadErr and
// readErr is nil: cancellation explains whatever else went wrong. Either
// way, every Send has returned.
func (p PartUpload) Run(ctx context.Context, first *[]byte, body io.Reader, size int64) (total int64, parts int, readErr, uploadErr error) {
	free := make(chan *[]byte, p.Concurrency+1)
	for range p.Concurrency {
		free <- nil // allocated on first use
	}
	defer func() {
		for range p.Concurrency + 1 {
			if bp := <-free; bp != nil {
				p.PutBuf(bp)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.Concurrency)
	send := func(i int, bp *[]byte, n int) {
		g.Go(func() error {
			defer func() { free <- bp }()
			return p.Send(gctx, i, (*bp)[:n])
		})
	}
	total, parts = int64(len(*first)), 1
	send(0, first, len(*first))
	for gctx.Err() == nil {
		bp := <-free
		if bp == nil {
			bp = p.GetBuf()
		}
		n, err := io.ReadFull(body, *bp)
		switch {
		case n == 0:
			free <- bp
		case parts >= p.MaxParts:
			free <- bp
			readErr = fmt.Errorf("object exceeds %d parts of %s", p.MaxParts, p.PartSize)
		default:
			total += int64(n)
			send(parts, bp, n)
			parts++
		}
		if readErr != nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	uploadErr = g.Wait()
	if err := ctx.Err(); err != nil {
		return total, parts, nil, err
	}
	if readErr == nil && uploadErr == nil {
		readErr = CheckBodySize(total, size)
	}
	return total, parts, readErr, uploadErr
}
