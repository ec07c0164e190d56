package gcs

import (
	"context"
	"strings"
	"time"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/stratus-registry/stratus/storage"
)

// AbortStale implements storage.MultipartReaper. A write's activity is its
// newest temporary object (the marker at NewMultipart, part objects at each
// Append), so a write whose objects are all older than cutoff is idle: its
// objects are deleted, marker first, exactly as Abort does. The listing is
// in name order, so one write's objects come together and only one write
// is held in memory at a time.
func (d *Driver) AbortStale(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	prefix := d.root + storage.InternalDir + "uploads/"
	q := &gcs.Query{Prefix: prefix, Projection: gcs.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Updated"}); err != nil {
		return 0, opError("abort-stale", "", err)
	}
	it := d.bucket.Objects(ctx, q)
	n := 0
	var (
		id     string
		newest time.Time
	)
	flush := func() error {
		if id == "" || !newest.Before(cutoff) {
			return nil
		}
		n++
		if dryRun {
			return nil
		}
		m := &multipart{d: d, st: handleState{HandleHeader: storage.HandleHeader{ID: id}}}
		return m.Abort(ctx)
	}
	for {
		a, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return n, opError("abort-stale", "", err)
		}
		this, _, _ := strings.Cut(strings.TrimPrefix(a.Name, prefix), "/")
		if this != id {
			if err := flush(); err != nil {
				return n, err
			}
			id, newest = this, time.Time{}
		}
		if a.Updated.After(newest) {
			newest = a.Updated
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, nil
}
