package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratus-registry/stratus/storage"
)

var _ storage.MultipartReaper = (*Driver)(nil)

// AbortStale implements storage.MultipartReaper. An S3 upload's activity
// is its newest part; one that has no part and was started before cutoff
// counts as idle too (it would have to receive under one part in the whole
// upload TTL to still be alive, and if it is, its client gets a clean
// BLOB_UPLOAD_UNKNOWN). A tail segment is written on every Append that
// sends no part, so a write's newest segment is its last activity.
func (d *Driver) AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	n, seen, err := d.abortStaleUploads(ctx, d.root, cutoff, dryRun)
	if err == nil && seen == 0 && d.root != "" {
		// Some S3-compatible servers (MinIO) match the prefix of this call
		// only against whole keys; list the bucket and filter here.
		var m int
		m, _, err = d.abortStaleUploads(ctx, "", cutoff, dryRun)
		n += m
	}
	if err != nil {
		return n, err
	}
	tails, err := d.staleTails(ctx, cutoff)
	if err != nil {
		return n, err
	}
	if !dryRun {
		if err := d.deleteObjects(ctx, tails); err != nil {
			return n, opError("abort-stale", "", err)
		}
	}
	return n, nil
}

// staleTails lists the tail segments of writes untouched since cutoff: a
// write's activity is its newest segment, so an active write whose oldest
// segments are older than cutoff keeps them.
func (d *Driver) staleTails(ctx context.Context, cutoff time.Time) ([]string, error) {
	prefix := d.root + storage.InternalDir + "uploads/"
	keys := map[string][]string{} // write directory -> its objects
	active := map[string]bool{}
	var token *string
	for {
		out, err := d.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: &d.cfg.Bucket, Prefix: aws.String(prefix), ContinuationToken: token,
		})
		if err != nil {
			return nil, opError("abort-stale", "", err)
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			dir, _, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
			keys[dir] = append(keys[dir], key)
			if o.LastModified == nil || !o.LastModified.Before(cutoff) {
				active[dir] = true
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	var stale []string
	for dir, ks := range keys {
		if !active[dir] {
			stale = append(stale, ks...)
		}
	}
	return stale, nil
}

// abortStaleUploads aborts the idle uploads listed under prefix that belong
// to this driver's root; seen counts the root's uploads it examined.
func (d *Driver) abortStaleUploads(ctx context.Context, prefix string, cutoff time.Time, dryRun bool) (n, seen int, err error) {
	var keyMarker, idMarker *string
	for {
		out, err := d.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
			Bucket: &d.cfg.Bucket, Prefix: aws.String(prefix), KeyMarker: keyMarker, UploadIdMarker: idMarker,
		})
		if err != nil {
			return n, seen, opError("abort-stale", "", err)
		}
		for _, u := range out.Uploads {
			if !strings.HasPrefix(aws.ToString(u.Key), d.root) {
				continue
			}
			seen++
			if u.Initiated == nil || !u.Initiated.Before(cutoff) {
				continue
			}
			parts, err := d.client.ListParts(ctx, &s3.ListPartsInput{Bucket: &d.cfg.Bucket, Key: u.Key, UploadId: u.UploadId})
			if err != nil {
				continue // completed or aborted meanwhile
			}
			active := false
			for _, p := range parts.Parts {
				if p.LastModified != nil && !p.LastModified.Before(cutoff) {
					active = true
				}
			}
			if active {
				continue
			}
			n++
			if dryRun {
				continue
			}
			if _, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: &d.cfg.Bucket, Key: u.Key, UploadId: u.UploadId,
			}); err != nil {
				return n, seen, opError("abort-stale", strings.TrimPrefix(aws.ToString(u.Key), d.root), err)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, seen, nil
		}
		keyMarker, idMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}
