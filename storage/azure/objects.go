package azure

import (
	"context"
	"errors"
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
	return storage.OpenRange(ctx, storage.RangeRead{
		Driver: driverName, Key: key,
		Stat: func(ctx context.Context) (storage.Info, error) { return d.Stat(ctx, key) },
		Open: func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
			opts := &blob.DownloadStreamOptions{}
			if offset > 0 || length > 0 {
				opts.Range = blob.HTTPRange{Offset: offset, Count: max(length, 0)}
			}
			// Azure answers 416 for a range that starts at the end, which
			// OpenRange resolves.
			resp, err := d.blockBlob(d.blobName(key)).DownloadStream(ctx, opts)
			if err != nil {
				return nil, d.opError("read", key, err)
			}
			// The retry reader resumes a broken body with a ranged GET
			// pinned to the blob's ETag, so a retry never mixes two
			// versions.
			body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3, EarlyCloseAsError: true})
			return storage.ClassifyBody(body, func(err error) error { return d.opError("read", key, err) }), nil
		},
	}, offset, length)
}

// List implements storage.Driver. Azure has no start-after; StartFrom is
// inclusive and not honoured by every server (Azurite ignores it), so
// names up to startAfter are also skipped here. Pages go on until one
// yields a key, holding one page in memory.
func (d *Driver) List(ctx context.Context, prefix, startAfter string, limit int) (storage.ListPage, error) {
	if !storage.PossiblePrefix(prefix) {
		return storage.ListPage{}, nil
	}
	limit = storage.PageLimit(limit, defaultList, maxListResults)
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
			if strings.HasPrefix(key, storage.InternalDir) {
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

// DeleteBatch implements storage.Driver. It uses the blob batch API, 256
// blobs a request, unless the credential cannot (a SAS without batch
// rights, a server without it): then it deletes upload_concurrency blobs
// at a time.
func (d *Driver) DeleteBatch(ctx context.Context, keys []string) error {
	names, err := storage.StoreKeys(driverName, "delete", keys, d.blobName)
	if err != nil {
		return err
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
