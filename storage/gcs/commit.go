package gcs

import (
	"context"
	"errors"
	"fmt"
	"time"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/stratus-registry/stratus/storage"
)

// Commit implements storage.Multipart. A failed Commit may be retried, on
// this writer or on one resumed from the same handle.
//
// Composing the same pinned generations again gives the same object, so
// every compose is retried by the client (RetryAlways). When the write is
// found gone (the marker or a part is missing: another process committed
// or aborted it, or an earlier attempt of ours did and its answer was
// lost), the object at the key is accepted only if it has exactly the
// expected size and CRC32C.
func (m *multipart) Commit(ctx context.Context) (storage.Info, error) {
	if m.err != nil {
		return storage.Info{}, &storage.OpError{Op: "commit", Driver: driverName, Key: m.st.Key, Err: m.err}
	}
	st := m.st
	if _, err := m.marker().Attrs(ctx); err != nil {
		return m.committedElsewhere(ctx, m.goneError("commit", err))
	}
	attrs, err := m.compose(ctx)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return m.committedElsewhere(ctx, err)
		}
		return storage.Info{}, err
	}
	if attrs.Size != st.Size || attrs.CRC32C != st.CRC {
		return storage.Info{}, &storage.OpError{Op: "commit", Driver: driverName, Key: st.Key,
			Err: fmt.Errorf("composed object is %d bytes with CRC32C %08x; the write has %d bytes with %08x", attrs.Size, attrs.CRC32C, st.Size, st.CRC)}
	}
	m.err = storage.ErrWriterDone
	if err := m.marker().Retryer(gcs.WithPolicy(gcs.RetryAlways)).Delete(ctx); err != nil && !errors.Is(err, gcs.ErrObjectNotExist) {
		m.d.logger.Warn("deleting the marker of a committed write", "key", st.Key, "error", err)
	}
	if err := m.deleteTemporaries(ctx); err != nil {
		m.d.logger.Warn("deleting the temporary objects of a committed write", "key", st.Key, "error", err)
	}
	info := infoOf(st.Key, attrs)
	return info, nil
}

// committedElsewhere decides a Commit that found the write gone: success
// if the key holds exactly our bytes, else gone.
func (m *multipart) committedElsewhere(ctx context.Context, gone error) (storage.Info, error) {
	if !errors.Is(gone, storage.ErrNotFound) {
		return storage.Info{}, gone
	}
	a, err := m.d.object(m.st.Key).Attrs(ctx)
	if err != nil {
		if errors.Is(err, gcs.ErrObjectNotExist) {
			return storage.Info{}, gone
		}
		return storage.Info{}, opError("commit", m.st.Key, err)
	}
	if a.Size != m.st.Size || a.CRC32C != m.st.CRC {
		return storage.Info{}, gone
	}
	m.err = storage.ErrWriterDone
	m.d.logger.Info("multipart write already committed", "key", m.st.Key, "size", a.Size)
	return infoOf(m.st.Key, a), nil
}

// compose builds the object from the parts, or writes an empty one.
func (m *multipart) compose(ctx context.Context) (*gcs.ObjectAttrs, error) {
	st := m.st
	dst := m.d.object(st.Key).Retryer(gcs.WithPolicy(gcs.RetryAlways))
	var sources []*gcs.ObjectHandle
	for _, p := range st.Parts {
		sources = append(sources, m.pieceObject(p))
	}
	if st.Tail != nil {
		sources = append(sources, m.pieceObject(*st.Tail))
	}
	if len(sources) == 0 {
		attrs, err := m.d.uploadBytes(ctx, dst, nil, "")
		return attrs, opError("commit", st.Key, err)
	}
	// Levels of at most 32 sources each: 1,024 parts take 33 calls.
	for level := 0; len(sources) > maxComposeSources; level++ {
		var next []*gcs.ObjectHandle
		for i := 0; i < len(sources); i += maxComposeSources {
			group := sources[i:min(i+maxComposeSources, len(sources))]
			tmp := m.d.bucket.Object(fmt.Sprintf("%sc%02d-%06d", m.dir(), level, i/maxComposeSources))
			c := tmp.Retryer(gcs.WithPolicy(gcs.RetryAlways)).ComposerFrom(group...)
			c.KMSKeyName = m.d.cfg.KMSKeyName
			attrs, err := c.Run(ctx)
			if err != nil {
				return nil, m.goneError("commit", err)
			}
			next = append(next, tmp.Generation(attrs.Generation))
		}
		sources = next
	}
	c := dst.ComposerFrom(sources...)
	c.KMSKeyName = m.d.cfg.KMSKeyName
	c.CRC32C, c.SendCRC32C = st.CRC, true
	attrs, err := c.Run(ctx)
	if err != nil {
		return nil, m.goneError("commit", err)
	}
	return attrs, nil
}

// Abort implements storage.Multipart.
func (m *multipart) Abort(ctx context.Context) error {
	if err := m.marker().Retryer(gcs.WithPolicy(gcs.RetryAlways)).Delete(ctx); err != nil && !errors.Is(err, gcs.ErrObjectNotExist) {
		return opError("abort", m.st.Key, err)
	}
	m.err = storage.ErrWriterDone
	if err := m.deleteTemporaries(ctx); err != nil {
		return opError("abort", m.st.Key, err)
	}
	return nil
}

// deleteTemporaries removes every object of this write, including those
// of failed Appends and intermediate composes.
func (m *multipart) deleteTemporaries(ctx context.Context) error {
	names, _, err := m.d.listNames(ctx, m.dir(), time.Time{})
	if err != nil {
		return err
	}
	return m.d.deleteObjects(ctx, names)
}

// listNames lists the bucket objects under prefix (a write's temporary
// objects: a bounded number) and the newest modification time among them.
func (d *Driver) listNames(ctx context.Context, prefix string, newest time.Time) ([]string, time.Time, error) {
	q := &gcs.Query{Prefix: prefix, Projection: gcs.ProjectionNoACL}
	if err := q.SetAttrSelection([]string{"Name", "Updated"}); err != nil {
		return nil, newest, err
	}
	it := d.bucket.Objects(ctx, q)
	var names []string
	for {
		a, err := it.Next()
		if err == iterator.Done {
			return names, newest, nil
		}
		if err != nil {
			return nil, newest, err
		}
		names = append(names, a.Name)
		if a.Updated.After(newest) {
			newest = a.Updated
		}
	}
}
