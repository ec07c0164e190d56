package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"golang.org/x/sync/errgroup"

	"github.com/stratus-registry/stratus/storage"
)

// maxListResults is Azure's page size limit; maxBatch its limit on the
// sub-requests of one blob batch.
const (
	maxListResults = 5000
	defaultList    = 1000
	maxBatch       = 256
)

// Reader implements storage.Driver.
func (d *Driver) Reader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := d.checkKey("read", key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, &storage.OpError{Op: "read", Driver: driverName, Key: key, Err: fmt.Errorf("%w: negative offset %d", storage.ErrInvalidRange, offset)}
	}
	if length == 0 {
		// Nothing to read, but a missing key or a bad offset must still
		// be reported.
		info, err := d.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if offset > info.Size {
			return nil, d.rangeError(key, offset, info.Size)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	opts := &blob.DownloadStreamOptions{}
	if offset > 0 || length > 0 {
		opts.Range = blob.HTTPRange{Offset: offset, Count: max(length, 0)}
	}
	resp, err := d.blockBlob(d.blobName(key)).DownloadStream(ctx, opts)
	if err != nil {
		err = d.opError("read", key, err)
		if !errors.Is(err, storage.ErrInvalidRange) {
			return nil, err
		}
		// Azure answers 416 for a range that starts at the end.
		info, serr := d.Stat(ctx, key)
		if serr != nil {
			return nil, serr
		}
		if offset == info.Size {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, d.rangeError(key, offset, info.Size)
	}
	// The retry reader resumes a broken body with a ranged GET pinned to
	// the blob's ETag, so a retry never mixes two versions.
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3, EarlyCloseAsError: true})
	return &bodyReader{d: d, body: body, key: key}, nil
}

func (d *Driver) rangeError(key string, offset, size int64) error {
	return &storage.OpError{Op: "read", Driver: driverName, Key: key,
		Err: fmt.Errorf("%w: offset %d past size %d", storage.ErrInvalidRange, offset, size)}
}

// bodyReader classifies a body that breaks off mid-stream, so that the
// caller can tell a dropped connection from a bad object.
type bodyReader struct {
	d    *Driver
	body io.ReadCloser
	key  string
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = b.d.opError("read", b.key, err)
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.body.Close() }

// List implements storage.Driver. Azure has no start-after; StartFrom is
// inclusive and not honoured by every server (Azurite ignores it), so
// names up to startAfter are also skipped here. Pages go on until one
// yields a key, holding one page in memory.
func (d *Driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if !possiblePrefix(prefix) {
		return storage.ListPage{}, nil
	}
	if limit <= 0 {
		limit = defaultList
	}
	limit = min(limit, maxListResults)
	opts := &container.ListBlobsFlatOptions{Prefix: ptr(d.blobName(prefix)), MaxResults: ptr(int32(limit))}
	after := ""
	if startAfter != "" {
		after = d.blobName(startAfter)
		opts.StartFrom = ptr(after)
	}
	var page storage.ListPage
	pager := d.container.NewListBlobsFlatPager(opts)
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return storage.ListPage{}, d.opError("list", prefix, err)
		}
		for _, it := range resp.Segment.BlobItems {
			name := deref(it.Name)
			if name <= after {
				continue
			}
			key := strings.TrimPrefix(name, d.root)
			if strings.HasPrefix(key, internalDir) {
				continue
			}
			if len(page.Objects) == limit {
				page.More = true
				return page, nil
			}
			info := storage.Info{Key: key}
			if p := it.Properties; p != nil {
				info.Size, info.ModTime, info.ETag = deref(p.ContentLength), deref(p.LastModified), etagString(p.ETag)
			}
			page.Objects = append(page.Objects, info)
		}
		// A page of nothing but skipped names has no last key to continue
		// from, so read on; one page is in memory at a time.
		if len(page.Objects) > 0 {
			page.More = pager.More()
			return page, nil
		}
	}
	return page, nil
}

// possiblePrefix reports whether some valid key could start with prefix:
// every segment it completes must be a valid one.
func possiblePrefix(prefix string) bool {
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return true
	}
	return storage.ValidKey(prefix[:i])
}

// DeleteBatch implements storage.Driver. It uses the blob batch API, 256
// blobs a request, unless the credential cannot (a SAS without batch
// rights, a server without it): then it deletes upload_concurrency blobs
// at a time.
func (d *Driver) DeleteBatch(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := d.checkKey("delete", k); err != nil {
			return err
		}
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = d.blobName(k)
	}
	return d.deleteBlobs(ctx, names)
}

// deleteBlobs removes container blobs and reports each one that failed.
func (d *Driver) deleteBlobs(ctx context.Context, names []string) error {
	var errs []error
	for len(names) > 0 {
		chunk := names[:min(len(names), maxBatch)]
		names = names[len(chunk):]
		if len(chunk) > 1 && !d.noBatch.Load() {
			err, batched := d.deleteBatch(ctx, chunk)
			if batched {
				errs = append(errs, err)
				continue
			}
		}
		errs = append(errs, d.deleteEach(ctx, chunk))
	}
	return errors.Join(errs...)
}

// deleteBatch submits one batch; batched is false when the batch API was
// refused and the caller should delete one by one.
func (d *Driver) deleteBatch(ctx context.Context, names []string) (err error, batched bool) {
	bb, err := d.container.NewBatchBuilder()
	if err != nil {
		return nil, false
	}
	for _, n := range names {
		if err := bb.Delete(n, &container.BatchDeleteOptions{DeleteOptions: blob.DeleteOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)}}); err != nil {
			return nil, false
		}
	}
	resp, err := d.container.SubmitBatch(ctx, bb, nil)
	if err != nil {
		c := classify(err)
		if errors.Is(c, errDenied) || hasCode(err, "FeatureNotSupported", "InvalidQueryParameterValue", "UnsupportedHttpVerb", "InvalidUri") {
			d.noBatch.Store(true)
			d.logger.Info("blob batch refused; deleting blobs one request each", "error", err)
			return nil, false
		}
		return d.opError("delete", strings.TrimPrefix(names[0], d.root), err), true
	}
	var errs []error
	for _, item := range resp.Responses {
		if item.Error == nil {
			continue
		}
		key := strings.TrimPrefix(deref(item.BlobName), d.root)
		if err := d.opError("delete", key, item.Error); !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...), true
}

// deleteEach deletes blobs concurrently, one request each.
func (d *Driver) deleteEach(ctx context.Context, names []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.cfg.UploadConcurrency * 2)
	errs := make([]error, len(names))
	for i, n := range names {
		g.Go(func() error {
			errs[i] = d.deleteBlob(gctx, "delete", strings.TrimPrefix(n, d.root), n)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}
