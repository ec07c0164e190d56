package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// RangeRead is the part of Driver.Reader that differs between object
// stores; OpenRange does the rest.
type RangeRead struct {
	// Driver and Key name the read in errors.
	Driver, Key string
	// Stat returns the object's metadata, its errors already wrapped for
	// the caller (usually the driver's own Stat).
	Stat func(ctx context.Context) (Info, error)
	// Open issues one ranged read of length bytes from offset (length < 0:
	// to the end; offset > 0 or length > 0 only). Its error is already
	// classified: a store's 416 is ErrInvalidRange. The body it returns is
	// the caller's to wrap (see ClassifyBody).
	Open func(ctx context.Context, offset, length int64) (io.ReadCloser, error)
}

// OpenRange implements the contract of Driver.Reader over a store that
// reads byte ranges with one request: a negative offset is
// ErrInvalidRange; a zero length still reports a missing key or an offset
// past the end (it costs a Stat, no read); and when the store refuses the
// range (416, which object stores also answer for a range that starts at
// the end), a Stat tells the empty read at offset == size from an offset
// past the end.
func OpenRange(ctx context.Context, rr RangeRead, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, &OpError{Op: "read", Driver: rr.Driver, Key: rr.Key,
			Err: fmt.Errorf("%w: negative offset %d", ErrInvalidRange, offset)}
	}
	if length != 0 {
		rc, err := rr.Open(ctx, offset, length)
		if err == nil || !errors.Is(err, ErrInvalidRange) {
			return rc, err
		}
	}
	info, err := rr.Stat(ctx)
	if err != nil {
		return nil, err
	}
	// After a refused range only offset == size is an empty read; a store
	// that refuses a range inside the object is reported, not guessed at.
	if offset > info.Size || (length != 0 && offset != info.Size) {
		return nil, RangeError(rr.Driver, rr.Key, offset, info.Size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// RangeError is the ErrInvalidRange of a read at offset of an object of
// size bytes.
func RangeError(driver, key string, offset, size int64) error {
	return &OpError{Op: "read", Driver: driver, Key: key,
		Err: fmt.Errorf("%w: offset %d past size %d", ErrInvalidRange, offset, size)}
}

// ClassifyBody wraps a response body so that a read error other than EOF
// goes through classify (the driver's error translation, which marks a
// connection dropped mid-stream transient), so that a caller can tell a
// dropped connection from a bad object.
func ClassifyBody(body io.ReadCloser, classify func(error) error) io.ReadCloser {
	return &classifiedBody{body: body, classify: classify}
}

type classifiedBody struct {
	body     io.ReadCloser
	classify func(error) error
}

func (b *classifiedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		err = b.classify(err)
	}
	return n, err
}

func (b *classifiedBody) Close() error { return b.body.Close() }
