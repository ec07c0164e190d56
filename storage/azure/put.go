package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/storage"
)

// ifNoneMatchAny makes a write create-only. Azure applies the condition
// atomically with the write; a retry of a write that was in fact applied
// fails it (409 BlobAlreadyExists), which is ErrExists, never another
// error: the registry then reads the blob back and finds its own bytes.
func ifNoneMatchAny() *blob.AccessConditions {
	return &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: ptr(azcore.ETagAny)}}
}

// Put implements storage.Driver. Bodies up to one block go up in one Put
// Blob; larger ones are staged as blocks, upload_concurrency at a time,
// and committed with one Put Block List.
func (d *Driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	if err := d.checkKey("put", key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: err}
	}
	r = storage.ContextReader(ctx, r)
	var bp *[]byte
	release := func() {}
	if opts.Size >= 0 && opts.Size <= smallBufSize {
		bp = d.getSmallBuf()
		release = func() { d.putSmallBuf(bp) }
	} else {
		bp = d.getBuf()
		release = func() { d.putBuf(bp) }
	}
	defer func() { release() }()

	var n int
	var err error
	if opts.Size >= 0 && opts.Size <= int64(len(*bp)) {
		n, err = readExactly(r, (*bp)[:opts.Size])
	} else {
		n, err = io.ReadFull(r, *bp)
		if err == nil {
			release = func() {} // putBlocks owns the buffer now
			return d.putBlocks(ctx, key, r, bp, opts)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		if err == nil && opts.Size >= 0 && int64(n) != opts.Size {
			err = fmt.Errorf("body is %d bytes, size says %d", n, opts.Size)
		}
	}
	if err != nil {
		return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: err}
	}

	uo := &blockblob.UploadOptions{}
	if opts.ContentType != "" {
		uo.HTTPHeaders = &blob.HTTPHeaders{BlobContentType: &opts.ContentType}
	}
	if opts.CreateOnly {
		uo.AccessConditions = ifNoneMatchAny()
	}
	resp, err := d.blockBlob(d.blobName(key)).Upload(ctx, streaming.NopCloser(bytes.NewReader((*bp)[:n])), uo)
	if err != nil {
		return storage.Info{}, d.opError("put", key, err)
	}
	return storage.Info{Key: key, Size: int64(n), ModTime: deref(resp.LastModified), ETag: etagString(resp.ETag)}, nil
}

// readExactly fills p from r and fails if r has fewer or more bytes.
func readExactly(r io.Reader, p []byte) (int, error) {
	n, err := io.ReadFull(r, p)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, fmt.Errorf("body ended after %d bytes, size says %d", n, len(p))
		}
		return n, err
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return n, fmt.Errorf("body is longer than size %d", len(p))
	}
	return n, nil
}

// putBlocks finishes a Put whose body filled the first block buffer. The
// blocks carry a fresh write id, so they cannot mix with another write's.
// If the Put fails, its uncommitted blocks stay on the blob, invisible,
// until Azure drops them (7 days) or the next commit to the key does.
func (d *Driver) putBlocks(ctx context.Context, key string, r io.Reader, firstBuf *[]byte, opts storage.PutOptions) (storage.Info, error) {
	first := *firstBuf
	bb := d.blockBlob(d.blobName(key))
	writeID := randomID()
	// A free list of its own: upload_concurrency buffers in flight plus
	// the one being filled, reused for the whole body, so a long Put does
	// not churn the shared pool (which the GC empties) into garbage.
	conc := d.cfg.UploadConcurrency
	free := make(chan *[]byte, conc+1)
	for range conc {
		free <- nil // allocated on first use
	}
	defer func() {
		for range conc + 1 {
			if bp := <-free; bp != nil {
				d.putBuf(bp)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	send := func(i int, data []byte, done func()) {
		g.Go(func() error {
			defer done()
			_, err := bb.StageBlock(gctx, blockID(writeID, i), streaming.NopCloser(bytes.NewReader(data)), nil)
			return err
		})
	}
	var readErr error
	total := int64(len(first))
	count := 1
	send(0, first, func() { free <- firstBuf })
	for gctx.Err() == nil {
		bp := <-free
		if bp == nil {
			bp = d.getBuf()
		}
		n, err := io.ReadFull(r, *bp)
		switch {
		case n == 0:
			free <- bp
		case count >= d.lim.maxBlocks:
			free <- bp
			readErr = fmt.Errorf("object exceeds %d blocks of %s", d.lim.maxBlocks, storage.Size(d.lim.blockSize))
		default:
			total += int64(n)
			send(count, (*bp)[:n], func() { free <- bp })
			count++
		}
		if readErr != nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	uploadErr := g.Wait()
	if err := ctx.Err(); err != nil {
		// Cancellation explains whatever else went wrong.
		readErr, uploadErr = nil, err
	}
	if readErr == nil && uploadErr == nil && opts.Size >= 0 && total != opts.Size {
		readErr = fmt.Errorf("body is %d bytes, size says %d", total, opts.Size)
	}
	switch {
	case readErr != nil:
		return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: readErr}
	case uploadErr != nil:
		return storage.Info{}, d.opError("put", key, uploadErr)
	}

	return d.commitPut(ctx, key, bb, blockIDs(writeID, count), total, opts)
}

// commitPut commits the blocks of a staged Put.
func (d *Driver) commitPut(ctx context.Context, key string, bb *blockblob.Client, ids []string, size int64, opts storage.PutOptions) (storage.Info, error) {
	co := &blockblob.CommitBlockListOptions{}
	if opts.ContentType != "" {
		co.HTTPHeaders = &blob.HTTPHeaders{BlobContentType: &opts.ContentType}
	}
	if opts.CreateOnly {
		co.AccessConditions = ifNoneMatchAny()
	}
	resp, err := bb.CommitBlockList(ctx, ids, co)
	if err != nil {
		return storage.Info{}, d.opError("put", key, err)
	}
	return storage.Info{Key: key, Size: size, ModTime: deref(resp.LastModified), ETag: etagString(resp.ETag)}, nil
}

// discardBlocks drops the uncommitted blocks of a key that has no blob:
// an empty create-only commit turns them into an empty blob (discarding
// every uncommitted block), which is then deleted if it is still that
// one. A key with a blob keeps them until Azure's 7-day expiry; committing
// there would change someone's blob.
func (d *Driver) discardBlocks(ctx context.Context, key string) error {
	bb := d.blockBlob(d.blobName(key))
	resp, err := bb.CommitBlockList(ctx, nil, &blockblob.CommitBlockListOptions{AccessConditions: ifNoneMatchAny()})
	if err != nil {
		if errors.Is(classify(err), storage.ErrExists) {
			return nil
		}
		return err
	}
	_, err = bb.Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: resp.ETag},
	}})
	if c := classify(err); err != nil && !errors.Is(c, storage.ErrNotFound) && !errors.Is(c, storage.ErrExists) {
		return err
	}
	return nil
}
