package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stratus-registry/stratus/storage"
)

// putBuffer is the first buffer of a Put of size bytes (-1: unknown),
// reserved from the budget: one of its own for a body known to be smaller
// than a part (manifests, records), else a pooled part buffer.
func (d *Driver) putBuffer(ctx context.Context, size int64) (*[]byte, func(), error) {
	if size < 0 || size >= int64(d.cfg.PartSize) {
		return d.reserve(ctx, &d.bufs, int(d.cfg.PartSize))
	}
	release, err := d.budget.Acquire(ctx, size)
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, size)
	return &b, release, nil
}

// Put implements storage.Driver.
func (d *Driver) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	if err := d.checkKey("put", key); err != nil {
		return storage.Info{}, err
	}
	conditional := false
	if opts.CreateOnly {
		ok, err := d.conditionalWrites(ctx)
		if err != nil {
			return storage.Info{}, opError("put", key, err)
		}
		if ok {
			conditional = true
		} else {
			// Not atomic: see conditionalWrites.
			_, err := d.Stat(ctx, key)
			switch {
			case err == nil:
				return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: storage.ErrExists}
			case !errors.Is(err, storage.ErrNotFound):
				return storage.Info{}, err
			}
		}
	}

	buf, done, err := d.putBuffer(ctx, opts.Size)
	if err != nil {
		return storage.Info{}, opError("put", key, err)
	}
	n, more, err := storage.FillBuffer(r, *buf, opts.Size)
	if more {
		return d.putMultipart(ctx, key, r, buf, done, opts, conditional)
	}
	defer done()
	if err != nil {
		return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: err}
	}

	sse, kms := d.sse()
	in := &s3.PutObjectInput{
		Bucket:               &d.cfg.Bucket,
		Key:                  aws.String(d.objectKey(key)),
		Body:                 bytes.NewReader((*buf)[:n]),
		ContentLength:        aws.Int64(int64(n)),
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kms,
		StorageClass:         types.StorageClass(d.cfg.StorageClass),
	}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	if conditional {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := d.client.PutObject(ctx, in)
	if err != nil {
		return storage.Info{}, opError("put", key, err)
	}
	return storage.Info{Key: key, Size: int64(n), ModTime: responseTime(out.ResultMetadata), ETag: trimETag(out.ETag)}, nil
}

// responseTime is the server's Date header, the closest thing to the new
// object's modification time a write answer carries; it saves a HEAD.
func responseTime(md middleware.Metadata) time.Time {
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now().UTC()
}

// conditionalWrites reports whether the server honours If-None-Match on
// PutObject (AWS since 2024, recent MinIO). Some S3-compatible servers
// ignore the header and overwrite; for them create-only Puts fall back to
// HEAD then PUT, which is NOT atomic: two concurrent writers may both
// succeed and the last one wins. The registry writes the same bytes for
// the same digest, so the race costs an extra write, not corruption. The
// probe writes one object twice, once per driver, and is repeated after a
// failure.
func (d *Driver) conditionalWrites(ctx context.Context) (bool, error) {
	d.condMu.Lock()
	defer d.condMu.Unlock()
	if d.cond != condUnknown {
		return d.cond == condSupported, nil
	}
	key := d.root + storage.InternalDir + "probe/" + storage.NewWriteID()
	sse, kms := d.sse() // a bucket policy may demand it on every write
	put := func() error {
		_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(key), Body: bytes.NewReader(nil),
			ContentLength: aws.Int64(0), IfNoneMatch: aws.String("*"),
			ServerSideEncryption: sse, SSEKMSKeyId: kms,
		})
		return err
	}
	// The key is fresh, so a 412 on the first write can only be the SDK's
	// retry of our own write, applied with its answer lost: the server
	// honours the precondition.
	firstErr := put()
	if firstErr != nil && !errors.Is(classify(firstErr), storage.ErrExists) {
		return false, fmt.Errorf("probing conditional writes: %w", firstErr)
	}
	err := firstErr
	if err == nil {
		err = put()
	}
	if derr := d.deleteObject(ctx, "probe", key, key); derr != nil {
		d.logger.Warn("deleting the conditional-write probe object", "key", key, "error", derr)
	}
	switch {
	case err == nil:
		d.cond = condIgnored
		d.logger.Warn("the S3 server ignores If-None-Match: create-only writes fall back to HEAD then PUT, which is not atomic")
	case errors.Is(classify(err), storage.ErrExists):
		d.cond = condSupported
	default:
		return false, fmt.Errorf("probing conditional writes: %w", err)
	}
	return d.cond == condSupported, nil
}
