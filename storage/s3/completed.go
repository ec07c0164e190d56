package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stratus-registry/stratus/storage"
)

// completedEarlier is the answer to a CompleteMultipartUpload that failed
// with NoSuchUpload (or, create-only, PreconditionFailed): the SDK retries
// a completion whose answer was lost, and the retry finds the upload gone,
// or the object existing, because the first attempt completed it
// (design.md §7). It reports whether objectKey now holds what completing
// parts (size bytes) produces. The ETag decides when it can be computed
// (parts with MD5 ETags: no SSE-KMS or SSE-C); otherwise the size does,
// which is not enough for a create-only write, where the object may be
// another writer's.
func (d *Driver) completedEarlier(ctx context.Context, objectKey string, parts []types.CompletedPart, size int64, createOnly bool) (storage.Info, bool, error) {
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.cfg.Bucket, Key: aws.String(objectKey)})
	if err != nil {
		if errors.Is(classify(err), storage.ErrNotFound) {
			return storage.Info{}, false, nil
		}
		return storage.Info{}, false, err
	}
	etag := trimETag(out.ETag)
	want, known := multipartETag(parts)
	switch {
	case aws.ToInt64(out.ContentLength) != size:
		return storage.Info{}, false, nil
	case known && etag != want:
		return storage.Info{}, false, nil
	case !known && createOnly:
		return storage.Info{}, false, nil
	}
	return storage.Info{Size: size, ModTime: aws.ToTime(out.LastModified), ETag: etag}, true, nil
}

// multipartETag is the ETag S3 (and MinIO) give an object completed from
// parts: the MD5 of the parts' binary MD5s, "-", the number of parts. ok
// is false when a part's ETag is not an MD5 (encrypted with KMS or a
// customer key).
func multipartETag(parts []types.CompletedPart) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(strings.Trim(aws.ToString(p.ETag), `"`))
		if err != nil || len(b) != md5.Size {
			return "", false
		}
		h.Write(b)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(parts)), true
}

// completeIdempotent is CompleteMultipartUpload that treats "upload gone,
// object there as completing it would leave it" as success. A failure is
// the SDK's error, for the caller's opError.
func (d *Driver) completeIdempotent(ctx context.Context, in *s3.CompleteMultipartUploadInput, size int64) (storage.Info, error) {
	out, err := d.client.CompleteMultipartUpload(ctx, in)
	if err == nil {
		return storage.Info{Size: size, ModTime: responseTime(out.ResultMetadata), ETag: trimETag(out.ETag)}, nil
	}
	createOnly := in.IfNoneMatch != nil
	if c := classify(err); !errors.Is(c, storage.ErrHandleExpired) && !(createOnly && errors.Is(c, storage.ErrExists)) {
		return storage.Info{}, err
	}
	info, ok, herr := d.completedEarlier(ctx, aws.ToString(in.Key), in.MultipartUpload.Parts, size, createOnly)
	if herr != nil || !ok {
		return storage.Info{}, err
	}
	d.logger.Info("multipart upload was completed by an earlier attempt whose answer was lost", "key", aws.ToString(in.Key), "size", size)
	return info, nil
}
