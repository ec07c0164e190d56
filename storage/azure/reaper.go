package azure

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stratus-registry/stratus/storage"
)

// Azure drops uncommitted blocks 7 days after their blob last changed,
// which bounds what a crashed process leaves on the target blob; the
// marker and tail segments are ordinary blobs and stay until deleted. GC
// calls AbortStale sooner, for writes whose upload session expired.

// AbortStale implements storage.MultipartReaper. A write's activity is the
// newest modification time among its marker (rewritten by an Append that
// leaves no segment) and its tail segments (one per Append otherwise).
// Writes are listed in name order, so their blobs come together and one
// write is in memory at a time.
func (d *Driver) AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	prefix := d.uploadsPrefix()
	pager := d.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: ptr(prefix)})
	var cur staleWrite
	n := 0
	flush := func() error {
		if cur.id == "" || cur.newest.After(cutoff) || cur.newest.Equal(cutoff) {
			return nil
		}
		n++
		if dryRun {
			return nil
		}
		return d.reap(ctx, cur)
	}
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return n, d.opError("abort-stale", "", err)
		}
		for _, it := range resp.Segment.BlobItems {
			name := deref(it.Name)
			id, rest, ok := strings.Cut(strings.TrimPrefix(name, prefix), "/")
			if !ok {
				continue
			}
			if id != cur.id {
				if err := flush(); err != nil {
					return n, err
				}
				cur = staleWrite{id: id}
			}
			if it.Properties != nil {
				if t := deref(it.Properties.LastModified); t.After(cur.newest) {
					cur.newest = t
				}
			}
			cur.hasMarker = cur.hasMarker || rest == "session"
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, nil
}

type staleWrite struct {
	id        string
	newest    time.Time
	hasMarker bool
}

// reap aborts one idle write: the marker goes first (no resume after it),
// then the target's uncommitted blocks, then the bookkeeping blobs. A
// write without a marker is the leftover of a Commit or Abort whose
// cleanup failed.
func (d *Driver) reap(ctx context.Context, w staleWrite) error {
	if w.hasMarker {
		var mk marker
		b, err := d.readSmall(ctx, d.markerName(w.id))
		if err == nil && json.Unmarshal(b, &mk) == nil && storage.ValidKey(mk.Key) {
			if err := d.deleteBlob(ctx, "abort-stale", mk.Key, d.markerName(w.id)); err != nil {
				return err
			}
			if err := d.discardBlocks(ctx, mk.Key); err != nil {
				return d.opError("abort-stale", mk.Key, err)
			}
		} else if err != nil {
			d.logger.Warn("reading a stale upload marker", "upload", w.id, "error", err)
		}
	}
	if err := d.deleteWrite(ctx, w.id); err != nil {
		return d.opError("abort-stale", "", err)
	}
	d.logger.Info("aborted a stale multipart write", "upload", w.id, "last_activity", w.newest)
	return nil
}

// readSmall reads a bookkeeping blob (at most 64 KiB).
func (d *Driver) readSmall(ctx context.Context, name string) ([]byte, error) {
	resp, err := d.blockBlob(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

// deleteWrite removes every bookkeeping blob of a write: its marker and
// all its tail segments, including those of failed Appends.
func (d *Driver) deleteWrite(ctx context.Context, id string) error {
	pager := d.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: ptr(d.writePrefix(id))})
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(resp.Segment.BlobItems))
		for _, it := range resp.Segment.BlobItems {
			names = append(names, deref(it.Name))
		}
		if err := d.deleteBlobs(ctx, names); err != nil {
			return err
		}
	}
	return nil
}
