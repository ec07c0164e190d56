package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

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

	n, more, err := storage.FillBuffer(r, *bp, opts.Size)
	if err != nil {
		return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: err}
	}
	if more {
		release = func() {} // putBlocks owns the buffer now
		return d.putBlocks(ctx, key, r, bp, opts)
	}

	// The MD5 is stored as the blob's Content-MD5 (and checked by Azure on
	// arrival); a create-only Put that finds the key taken compares it.
	sum := md5.Sum((*bp)[:n])
	uo := &blockblob.UploadOptions{HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: sum[:]}}
	if opts.ContentType != "" {
		uo.HTTPHeaders.BlobContentType = &opts.ContentType
	}
	if opts.CreateOnly {
		uo.AccessConditions = ifNoneMatchAny()
	}
	resp, err := d.blockBlob(d.blobName(key)).Upload(ctx, streaming.NopCloser(bytes.NewReader((*bp)[:n])), uo)
	if err != nil {
		err = d.opError("put", key, err)
		if maybeApplied(err, opts) {
			info, same, cerr := d.sameContent(ctx, key, int64(n), sum[:])
			switch {
			case same:
				return info, nil
			case cerr != nil:
				return storage.Info{}, cerr
			}
		}
		return storage.Info{}, err
	}
	return storage.Info{Key: key, Size: int64(n), ModTime: deref(resp.LastModified), ETag: etagString(resp.ETag)}, nil
}

// putBlocks finishes a Put whose body filled the first block buffer. The
// blocks carry a fresh write id, so they cannot mix with another write's.
// If the Put fails, its uncommitted blocks stay on the blob, invisible,
// until Azure drops them (7 days) or the next commit to the key does.
func (d *Driver) putBlocks(ctx context.Context, key string, r io.Reader, firstBuf *[]byte, opts storage.PutOptions) (storage.Info, error) {
	bb := d.blockBlob(d.blobName(key))
	writeID := storage.NewWriteID()
	// Buffers of its own (upload_concurrency in flight plus the one being
	// filled), reused for the whole body, so a long Put does not churn the
	// shared pool (which the GC empties) into garbage.
	total, count, readErr, uploadErr := storage.PartUpload{
		Concurrency: d.cfg.UploadConcurrency,
		MaxParts:    d.lim.maxBlocks,
		PartSize:    storage.Size(d.lim.blockSize),
		GetBuf:      d.getBuf,
		PutBuf:      d.putBuf,
		Send: func(ctx context.Context, i int, data []byte) error {
			_, err := bb.StageBlock(ctx, blockID(writeID, i), streaming.NopCloser(bytes.NewReader(data)), nil)
			return err
		},
	}.Run(ctx, firstBuf, r, opts.Size)
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
		err = d.opError("put", key, err)
		if maybeApplied(err, opts) {
			info, same, cerr := d.sameBlocks(ctx, key, ids, size)
			switch {
			case same:
				return info, nil
			case cerr != nil:
				return storage.Info{}, cerr
			}
		}
		return storage.Info{}, err
	}
	return storage.Info{Key: key, Size: size, ModTime: deref(resp.LastModified), ETag: etagString(resp.ETag)}, nil
}

// A write whose first attempt was applied but answered too late either
// fails with a transient error (retries exhausted) or, when create-only,
// finds its own blob on the SDK's retry. sameContent and sameBlocks
// recognise that case, so the caller gets the success it earned rather
// than ErrExists (a registry that took ErrExists for a lost race would
// delete the data its record points at) or a 503. Anything else keeps its
// error.

// maybeApplied: the write may have been applied although it failed: its
// answer was lost (a transient error after the SDK's retries), or a retry
// of a create-only write found the key taken.
func maybeApplied(err error, opts storage.PutOptions) bool {
	return storage.Retryable(err) || (opts.CreateOnly && errors.Is(err, storage.ErrExists))
}

// sameContent reports whether the blob at key has size bytes with MD5
// sum. err is set when that could not be learnt (the blob is gone, or the
// store failed): the caller must not claim a lost race it did not see.
func (d *Driver) sameContent(ctx context.Context, key string, size int64, sum []byte) (storage.Info, bool, error) {
	p, err := d.blockBlob(d.blobName(key)).GetProperties(ctx, nil)
	if err != nil {
		return storage.Info{}, false, d.checkError(key, err)
	}
	if deref(p.ContentLength) != size || !bytes.Equal(p.ContentMD5, sum) {
		return storage.Info{}, false, nil
	}
	d.logger.Info("put found its own earlier attempt applied", "key", key, "size", size)
	return storage.Info{Key: key, Size: size, ModTime: deref(p.LastModified), ETag: etagString(p.ETag)}, true, nil
}

// checkError is the error of a failed "was it applied?" check: transient,
// so that the caller retries instead of acting on a guess.
func (d *Driver) checkError(key string, err error) error {
	err = d.opError("put", key, err)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil // no blob: certainly not ours; the caller keeps its error
	case storage.Retryable(err), errors.Is(err, context.Canceled):
		return err
	}
	return &storage.TransientError{Err: fmt.Errorf("checking whether an unanswered write was applied: %w", err)}
}

// sameBlocks reports whether the blob at key is exactly the blocks ids
// (which carry a random write id) and size bytes.
func (d *Driver) sameBlocks(ctx context.Context, key string, ids []string, size int64) (storage.Info, bool, error) {
	bl, err := d.blockBlob(d.blobName(key)).GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	if err != nil {
		return storage.Info{}, false, d.checkError(key, err)
	}
	if len(bl.CommittedBlocks) != len(ids) || deref(bl.BlobContentLength) != size {
		return storage.Info{}, false, nil
	}
	for i, b := range bl.CommittedBlocks {
		if deref(b.Name) != ids[i] {
			return storage.Info{}, false, nil
		}
	}
	info, err := d.stat(ctx, d.blobName(key))
	if err != nil {
		return storage.Info{}, false, d.checkError(key, err)
	}
	info.Key = key
	d.logger.Info("commit found its own earlier attempt applied", "key", key, "size", size)
	return info, true, nil
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
