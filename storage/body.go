package storage

import (
	"fmt"
	"io"
)

// FillBuffer reads the start of a Put body of size bytes (or -1: unknown)
// into buf. A body that fits (size known and at most len(buf), or ending
// before buf is full) is read whole: n is its length and more is false,
// and a body that disagrees with size is an error. Otherwise buf is full,
// more is true, and the rest of the body is the caller's to stream.
func FillBuffer(r io.Reader, buf []byte, size int64) (n int, more bool, err error) {
	if size >= 0 && size <= int64(len(buf)) {
		n, err = ReadExactly(r, buf[:size])
		return n, false, err
	}
	n, err = io.ReadFull(r, buf)
	switch {
	case err == nil:
		return n, true, nil
	case err != io.EOF && err != io.ErrUnexpectedEOF:
		return n, false, err
	}
	if err := CheckBodySize(int64(n), size); err != nil {
		return n, false, err
	}
	return n, false, nil
}

// ReadExactly fills p from r and fails if r has fewer or more bytes.
func ReadExactly(r io.Reader, p []byte) (int, error) {
	n, err := io.ReadFull(r, p)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, fmt.Errorf("body ended after %d bytes, size says %d", n, len(p))
		}
		return n, err
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return n, fmt.Errorf("body is longer than size %d", len(p))
	}
	return n, nil
}

// CheckBodySize reports a streamed body of total bytes that does not
// match the size a Put was given (-1: unknown, anything goes).
func CheckBodySize(total, size int64) error {
	if size >= 0 && total != size {
		return fmt.Errorf("body is %d bytes, size says %d", total, size)
	}
	return nil
}
