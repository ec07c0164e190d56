package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stratus-registry/stratus/storage"
)

// A resumable write is an S3 multipart upload plus a tail: S3 wants every
// part but the last to be at least 5 MiB, while clients append in chunks
// of any size (1 MiB PATCHes are common). The tail is kept as segment
// objects, one per Append, under _stratus/uploads/<id>/ (storage.Tail):
// only when the tail and the stream fill the part buffer are the segments
// read back into it and sent as a part. So:
//   - memory is one part buffer, whatever the object size (an Append that
//     fits the small buffer holds only that);
//   - every byte is written twice, to a segment and in its part (plus once
//     per merge level, none for 1 MiB appends into parts up to 16 MiB),
//     and parts are never rewritten;
//   - a failed Append leaves the saved handle intact: segments are named
//     by number, so a retry overwrites what the failed attempt wrote, and
//     parts past the handle's list are overwritten by the next Append or
//     ignored by Complete.
// Commit copies a one-segment tail into the last part on the server
// (UploadPartCopy) and reads a longer one back into one part.

// handleVersion changes when the handle format does. Version 1 handles (a
// single tail object, tail-<seq>) are read as a one-segment tail.
const handleVersion = 2

// handleState is everything needed to continue a write; it is the handle.
type handleState struct {
	storage.HandleHeader              // its ID names this write's segments
	Bucket               string       `json:"bucket"`
	UploadID             string       `json:"upload_id"`
	Parts                []partRecord `json:"parts"`
	storage.Tail
	Size int64 `json:"size"`
	// TailSize is a version 1 handle's tail, object tail-<Seq>.
	TailSize int64 `json:"tail_size,omitempty"`
}

type partRecord struct {
	N    int32  `json:"n"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

type multipart struct {
	d   *Driver
	st  handleState
	err error
}

// NewMultipart implements storage.Driver. The S3 upload is created now,
// so that Abort and an expired upload are visible to every later resume.
func (d *Driver) NewMultipart(ctx context.Context, key string) (storage.Multipart, error) {
	if err := d.checkKey("multipart", key); err != nil {
		return nil, err
	}
	sse, kms := d.sse()
	out, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               &d.cfg.Bucket,
		Key:                  aws.String(d.objectKey(key)),
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kms,
		StorageClass:         types.StorageClass(d.cfg.StorageClass),
	})
	if err != nil {
		return nil, opError("multipart", key, err)
	}
	return &multipart{d: d, st: handleState{
		HandleHeader: storage.NewHandleHeader(handleVersion, driverName, d.root, key),
		Bucket:       d.cfg.Bucket, UploadID: aws.ToString(out.UploadId), Tail: storage.NewTail(),
	}}, nil
}

// ResumeMultipart implements storage.Driver. It checks that S3 still has
// the upload, so an aborted or expired write fails here rather than after
// more data was sent.
func (d *Driver) ResumeMultipart(ctx context.Context, handle []byte) (storage.Multipart, error) {
	var st handleState
	if err := storage.DecodeHandle(driverName, handle, &st, &st.HandleHeader, func() error { return d.checkHandle(&st) }); err != nil {
		return nil, err
	}
	_, err := d.client.ListParts(ctx, &s3.ListPartsInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(d.objectKey(st.Key)), UploadId: aws.String(st.UploadID), MaxParts: aws.Int32(1),
	})
	if err != nil {
		return nil, opError("resume", st.Key, err)
	}
	return &multipart{d: d, st: st}, nil
}

// upgrade turns a version 1 handle into the current form: its tail object
// is segment Seq, and the one before may still be there.
func (st *handleState) upgrade() error {
	if st.V != 1 {
		return nil
	}
	if st.Segs != nil || st.Clean != 0 || st.Seq < 0 || st.TailSize < 0 || (st.TailSize > 0 && st.Seq == 0) {
		return errors.New("invalid version 1 tail")
	}
	st.V, st.Clean = handleVersion, max(1, st.Seq-1)
	if st.TailSize > 0 {
		st.Segs = []storage.TailSegment{{Seq: st.Seq, Size: st.TailSize}}
	}
	st.TailSize = 0
	return nil
}

// checkHandle rejects handles of other drivers, buckets or formats, and
// inconsistent ones.
func (d *Driver) checkHandle(st *handleState) error {
	if err := st.upgrade(); err != nil {
		return err
	}
	if err := st.HandleHeader.Check(handleVersion, driverName, d.root); err != nil {
		return err
	}
	if err := st.Tail.Check(); err != nil {
		return err
	}
	switch {
	case st.Bucket != d.cfg.Bucket:
		return fmt.Errorf("handle is for bucket %q", st.Bucket)
	case st.UploadID == "":
		return errors.New("no upload id")
	case st.TailSize != 0 || st.Tail.Size() >= MaxPartSize:
		return errors.New("invalid tail")
	case len(st.Parts) > MaxParts:
		return errors.New("too many parts")
	}
	total := st.Tail.Size()
	for i, p := range st.Parts {
		if p.N != int32(i+1) || p.ETag == "" || p.Size < MinPartSize || p.Size > MaxPartSize {
			return fmt.Errorf("invalid part %d", i+1)
		}
		total += p.Size
	}
	if total != st.Size {
		return errors.New("size does not match parts and tail")
	}
	return nil
}

func (m *multipart) Size() int64 { return m.st.Size }

func (m *multipart) Handle() ([]byte, error) { return json.Marshal(m.st) }

func (m *multipart) segmentKey(seq int64) string {
	return fmt.Sprintf("%s%suploads/%s/tail-%010d", m.d.root, storage.InternalDir, m.st.ID, seq)
}

func (m *multipart) tailPrefix() string {
	return m.d.root + storage.InternalDir + "uploads/" + m.st.ID + "/"
}

func (m *multipart) fail(op string, err error) error {
	m.err = storage.ErrWriterDone
	return opError(op, m.st.Key, err)
}

// tailIO reads and writes this write's segments and sends parts into st.
func (m *multipart) tailIO(st *handleState) storage.TailIO {
	return storage.TailIO{
		Concurrency: m.d.cfg.UploadConcurrency,
		Read:        m.readSegment,
		Write:       m.writeSegment,
		SendPart: func(ctx context.Context, data []byte) error {
			if len(st.Parts) >= MaxParts {
				return fmt.Errorf("object exceeds %d parts of %s", MaxParts, m.d.cfg.PartSize)
			}
			num := int32(len(st.Parts) + 1)
			etag, err := m.d.uploadPart(ctx, m.d.objectKey(st.Key), st.UploadID, num, data)
			if err != nil {
				return err
			}
			st.Parts = append(st.Parts, partRecord{N: num, ETag: etag, Size: int64(len(data))})
			return nil
		},
	}
}

// Append implements storage.Multipart.
func (m *multipart) Append(ctx context.Context, r io.Reader) (int64, error) {
	if m.err != nil {
		return 0, &storage.OpError{Op: "append", Driver: driverName, Key: m.st.Key, Err: m.err}
	}
	st := m.st
	st.Parts = slices.Clip(st.Parts) // appends must not touch m.st's arrays
	st.Segs = slices.Clip(st.Segs)
	start := st.Tail.Start()
	tio := m.tailIO(&st)

	// Most appends are one chunk smaller than a part: take them in a
	// small buffer, so that many concurrent small pushes do not each hold
	// a part-sized one.
	sp, done, err := m.d.reserve(ctx, &m.d.smallBufs, smallBufSize)
	if err != nil {
		return 0, opError("append", st.Key, err) // the writer stays usable
	}
	defer done()
	n, rerr := io.ReadFull(r, *sp)
	switch {
	case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
		if n == 0 {
			return 0, nil
		}
		ok, err := tio.AppendSmall(ctx, &st.Tail, (*sp)[:n], int64(m.d.cfg.PartSize))
		if err != nil {
			return 0, m.fail("append", err)
		}
		if ok {
			st.Size += int64(n)
			m.finish(ctx, &st, start)
			return int64(n), nil
		}
	case rerr != nil:
		m.err = storage.ErrWriterDone
		return int64(n), &storage.OpError{Op: "append", Driver: driverName, Key: st.Key, Err: rerr}
	}

	bp, doneBuf, err := m.d.reserve(ctx, &m.d.bufs, int(m.d.cfg.PartSize))
	if err != nil {
		return 0, m.fail("append", err) // the small buffer's bytes are read: resume from the handle
	}
	defer doneBuf()
	took, _, err := tio.Append(ctx, &st.Tail, *bp, io.MultiReader(bytes.NewReader((*sp)[:n]), r))
	if ae := (*storage.AppendError)(nil); errors.As(err, &ae) && ae.Body {
		// The caller's stream broke (a client went away); not the store.
		m.err = storage.ErrWriterDone
		return took, &storage.OpError{Op: "append", Driver: driverName, Key: st.Key, Err: ae.Err}
	}
	if err != nil {
		return took, m.fail("append", err)
	}
	st.Size += took
	m.finish(ctx, &st, start)
	return took, nil
}

// finish makes st the writer's state and deletes the segments no handle
// the caller can still hold names (storage.Tail.Start), in one batch; on
// failure the next Append, Commit or the reaper deletes them.
func (m *multipart) finish(ctx context.Context, st *handleState, start int64) {
	if stale := st.Tail.Stale(start); len(stale) > 0 {
		keys := make([]string, len(stale))
		for i, n := range stale {
			keys[i] = m.segmentKey(n)
		}
		if err := m.d.deleteObjects(ctx, keys); err != nil {
			m.d.logger.Debug("deleting old multipart tail segments", "key", st.Key, "error", err)
		} else {
			st.Tail.Cleaned(start)
		}
	}
	m.st = *st
}

// writeSegment writes data as tail segment seq.
func (m *multipart) writeSegment(ctx context.Context, seq int64, data []byte) error {
	sse, kms := m.d.sse()
	_, err := m.d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &m.d.cfg.Bucket, Key: aws.String(m.segmentKey(seq)),
		Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ServerSideEncryption: sse, SSEKMSKeyId: kms,
	})
	return err
}

// copyPart makes object source part num of an upload, without moving the
// bytes through us. A missing source means the write's tail is gone.
func (d *Driver) copyPart(ctx context.Context, objectKey, uploadID string, num int32, source string) (string, error) {
	out, err := d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(num), CopySource: aws.String(copySource(d.cfg.Bucket, source)),
	})
	if err != nil {
		if c := classify(err); errors.Is(c, storage.ErrNotFound) && !errors.Is(c, storage.ErrHandleExpired) {
			err = fmt.Errorf("%w: tail object missing: %w", storage.ErrUploadGone, err)
		}
		return "", err
	}
	if out.CopyPartResult == nil || out.CopyPartResult.ETag == nil {
		return "", errors.New("UploadPartCopy answered without an ETag")
	}
	return aws.ToString(out.CopyPartResult.ETag), nil
}

// readSegment loads tail segment seq into p (len(p) is its size).
func (m *multipart) readSegment(ctx context.Context, seq int64, p []byte) error {
	out, err := m.d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &m.d.cfg.Bucket, Key: aws.String(m.segmentKey(seq))})
	if err != nil {
		if errors.Is(classify(err), storage.ErrNotFound) {
			return fmt.Errorf("%w: tail segment %d missing", storage.ErrUploadGone, seq)
		}
		return err
	}
	defer out.Body.Close()
	if aws.ToInt64(out.ContentLength) != int64(len(p)) {
		return fmt.Errorf("%w: tail segment %d is %d bytes, handle says %d", storage.ErrUploadGone, seq, aws.ToInt64(out.ContentLength), len(p))
	}
	_, err = io.ReadFull(out.Body, p)
	return err
}

// uploadPart sends one part and returns its ETag.
func (d *Driver) uploadPart(ctx context.Context, objectKey, uploadID string, num int32, data []byte) (string, error) {
	out, err := d.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(num), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// Commit implements storage.Multipart. A failed Commit may be retried.
func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	if m.err != nil {
		return storage.Info{}, &storage.OpError{Op: "commit", Driver: driverName, Key: m.st.Key, Err: m.err}
	}
	st := m.st
	st.Parts = slices.Clip(st.Parts)
	d := m.d
	objectKey := d.objectKey(st.Key)
	if err := m.sealTail(ctx, &st); err != nil {
		return storage.Info{}, opError("commit", st.Key, err)
	}
	parts := make([]types.CompletedPart, 0, len(st.Parts))
	for _, p := range st.Parts {
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(p.N), ETag: aws.String(p.ETag)})
	}

	var info storage.Info
	if len(parts) == 0 {
		// An empty object: S3 will not complete an upload without parts.
		// Check the upload is still ours before writing anything.
		_, err := d.client.ListParts(ctx, &s3.ListPartsInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(st.UploadID), MaxParts: aws.Int32(1),
		})
		if err != nil {
			return storage.Info{}, opError("commit", st.Key, err)
		}
		sse, kms := d.sse()
		out, err := d.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
			ServerSideEncryption: sse, SSEKMSKeyId: kms, StorageClass: types.StorageClass(d.cfg.StorageClass),
		})
		if err != nil {
			return storage.Info{}, opError("commit", st.Key, err)
		}
		info = storage.Info{Key: st.Key, ModTime: responseTime(out.ResultMetadata), ETag: trimETag(out.ETag)}
		if err := m.abortUpload(ctx); err != nil {
			d.logger.Warn("aborting the multipart upload of an empty object", "key", st.Key, "error", err)
		}
	} else {
		var err error
		info, err = d.completeIdempotent(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(st.UploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		}, st.Size)
		if err != nil {
			return storage.Info{}, opError("commit", st.Key, err)
		}
		info.Key = st.Key
	}
	m.err = storage.ErrWriterDone
	if err := m.deleteTails(ctx); err != nil {
		d.logger.Warn("deleting multipart tail objects after commit", "key", st.Key, "error", err)
	}
	return info, nil
}

// sealTail makes the tail the last part of st: a single segment is copied
// on the server, several are read back into one part buffer. The part
// number is fixed by st, so a retried Commit replaces the part.
func (m *multipart) sealTail(ctx context.Context, st *handleState) error {
	switch len(st.Segs) {
	case 0:
		return nil
	case 1:
		if len(st.Parts) >= MaxParts {
			return fmt.Errorf("object exceeds %d parts", MaxParts)
		}
		num := int32(len(st.Parts) + 1)
		etag, err := m.d.copyPart(ctx, m.d.objectKey(st.Key), st.UploadID, num, m.segmentKey(st.Segs[0].Seq))
		if err != nil {
			return err
		}
		st.Parts = append(st.Parts, partRecord{N: num, ETag: etag, Size: st.Segs[0].Size})
		st.Segs = nil
		return nil
	}
	bp, done, err := m.d.reserve(ctx, &m.d.bufs, int(m.d.cfg.PartSize))
	if err != nil {
		return err
	}
	defer done()
	return m.tailIO(st).Flush(ctx, &st.Tail, *bp)
}

// Abort implements storage.Multipart.
func (m *multipart) Abort(ctx context.Context) error {
	if err := m.abortUpload(ctx); err != nil {
		return opError("abort", m.st.Key, err)
	}
	m.err = storage.ErrWriterDone
	if err := m.deleteTails(ctx); err != nil {
		return opError("abort", m.st.Key, err)
	}
	return nil
}

// abortUpload aborts the S3 upload; one that is already gone is fine.
func (m *multipart) abortUpload(ctx context.Context) error {
	_, err := m.d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &m.d.cfg.Bucket, Key: aws.String(m.d.objectKey(m.st.Key)), UploadId: aws.String(m.st.UploadID),
	})
	if err != nil && !errors.Is(classify(err), storage.ErrNotFound) {
		return err
	}
	return nil
}

// deleteTails removes every tail object of this write, including those of
// failed Appends. There are only ever a few.
func (m *multipart) deleteTails(ctx context.Context) error {
	out, err := m.d.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &m.d.cfg.Bucket, Prefix: aws.String(m.tailPrefix())})
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(out.Contents))
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return m.d.deleteObjects(ctx, keys)
}

// copySource is the x-amz-copy-source value: bucket/key, URL-encoded.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return bucket + "/" + strings.Join(segs, "/")
}

// putMultipart finishes a Put whose body filled the first part buffer,
// which it takes over (done returns it): parts go up upload_concurrency at
// a time, each from its own buffer, reserved from the budget together.
func (d *Driver) putMultipart(ctx context.Context, key string, r io.Reader, first *[]byte, done func(), opts storage.PutOptions, conditional bool) (storage.Info, error) {
	release, err := d.budget.Acquire(ctx, int64(d.cfg.UploadConcurrency)*int64(d.cfg.PartSize))
	if err != nil {
		done()
		return storage.Info{}, opError("put", key, err)
	}
	defer release()
	// done gives first back once every part is sent (PutBuf below skips
	// it, or the pool would hold it twice).
	defer done()
	objectKey := d.objectKey(key)
	sse, kms := d.sse()
	in := &s3.CreateMultipartUploadInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(objectKey),
		ServerSideEncryption: sse, SSEKMSKeyId: kms, StorageClass: types.StorageClass(d.cfg.StorageClass),
	}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	created, err := d.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return storage.Info{}, opError("put", key, err)
	}
	uploadID := aws.ToString(created.UploadId)

	var (
		mu    sync.Mutex
		parts []types.CompletedPart
	)
	total, _, readErr, uploadErr := storage.PartUpload{
		Concurrency: d.cfg.UploadConcurrency,
		MaxParts:    MaxParts,
		PartSize:    d.cfg.PartSize,
		GetBuf:      d.getBuf,
		PutBuf: func(b *[]byte) {
			if b != first {
				d.putBuf(b)
			}
		},
		Send: func(ctx context.Context, i int, data []byte) error {
			num := int32(i + 1)
			etag, err := d.uploadPart(ctx, objectKey, uploadID, num, data)
			if err != nil {
				return err
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: aws.String(etag)})
			mu.Unlock()
			return nil
		},
	}.Run(ctx, first, r, opts.Size)
	if readErr != nil || uploadErr != nil {
		// Abort even if ctx is done, or the parts linger until a
		// lifecycle rule reaps them.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.RequestTimeout)
		defer cancel()
		if _, err := d.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(uploadID),
		}); err != nil {
			d.logger.Warn("aborting a failed multipart put", "key", key, "error", err)
		}
		if readErr != nil {
			return storage.Info{}, &storage.OpError{Op: "put", Driver: driverName, Key: key, Err: readErr}
		}
		return storage.Info{}, opError("put", key, uploadErr)
	}

	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	complete := &s3.CompleteMultipartUploadInput{
		Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if conditional {
		complete.IfNoneMatch = aws.String("*")
	}
	info, err := d.completeIdempotent(ctx, complete, total)
	if err != nil {
		err = opError("put", key, err)
		if errors.Is(err, storage.ErrExists) {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.RequestTimeout)
			defer cancel()
			d.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket: &d.cfg.Bucket, Key: aws.String(objectKey), UploadId: aws.String(uploadID),
			})
		}
		return storage.Info{}, err
	}
	info.Key = key
	return info, nil
}
