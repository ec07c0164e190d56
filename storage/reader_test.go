package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// fakeObject serves OpenRange like a store that answers 416 for every
// range starting at or past the end, and counts the requests.
type fakeObject struct {
	data        string
	missing     bool
	stats, gets int
}

func (f *fakeObject) rangeRead() RangeRead {
	return RangeRead{
		Driver: "fake", Key: "k",
		Stat: func(context.Context) (Info, error) {
			f.stats++
			if f.missing {
				return Info{}, &OpError{Op: "stat", Driver: "fake", Key: "k", Err: ErrNotFound}
			}
			return Info{Key: "k", Size: int64(len(f.data))}, nil
		},
		Open: func(_ context.Context, offset, length int64) (io.ReadCloser, error) {
			f.gets++
			switch {
			case f.missing:
				return nil, ErrNotFound
			case offset >= int64(len(f.data)):
				return nil, ErrInvalidRange
			}
			end := int64(len(f.data))
			if length > 0 {
				end = min(end, offset+length)
			}
			return io.NopCloser(strings.NewReader(f.data[offset:end])), nil
		},
	}
}

func TestOpenRange(t *testing.T) {
	tests := []struct {
		name           string
		missing        bool
		offset, length int64
		want           string
		wantErr        error
		stats, gets    int
	}{
		{name: "whole", offset: 0, length: -1, want: "hello", gets: 1},
		{name: "middle", offset: 1, length: 3, want: "ell", gets: 1},
		{name: "past the end truncated", offset: 3, length: 10, want: "lo", gets: 1},
		{name: "at the end", offset: 5, length: -1, want: "", stats: 1, gets: 1},
		{name: "past the end", offset: 6, length: 1, wantErr: ErrInvalidRange, stats: 1, gets: 1},
		{name: "negative offset", offset: -1, length: 1, wantErr: ErrInvalidRange},
		{name: "zero length", offset: 2, length: 0, want: "", stats: 1},
		{name: "zero length at the end", offset: 5, length: 0, want: "", stats: 1},
		{name: "zero length past the end", offset: 6, length: 0, wantErr: ErrInvalidRange, stats: 1},
		{name: "zero length missing", missing: true, length: 0, wantErr: ErrNotFound, stats: 1},
		{name: "missing", missing: true, length: -1, wantErr: ErrNotFound, gets: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeObject{data: "hello", missing: tt.missing}
			rc, err := OpenRange(t.Context(), f.rangeRead(), tt.offset, tt.length)
			if f.stats != tt.stats || f.gets != tt.gets {
				t.Errorf("requests: %d stats, %d gets; want %d, %d", f.stats, f.gets, tt.stats, tt.gets)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v; want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || string(got) != tt.want {
				t.Errorf("read %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// A store that refuses a range inside the object is reported, not read
// as empty.
func TestOpenRangeRefusedInside(t *testing.T) {
	rr := RangeRead{
		Driver: "fake", Key: "k",
		Stat: func(context.Context) (Info, error) { return Info{Size: 10}, nil },
		Open: func(context.Context, int64, int64) (io.ReadCloser, error) { return nil, ErrInvalidRange },
	}
	if _, err := OpenRange(t.Context(), rr, 3, 2); !errors.Is(err, ErrInvalidRange) {
		t.Errorf("err = %v; want ErrInvalidRange", err)
	}
}

type failingBody struct{ err error }

func (b failingBody) Read([]byte) (int, error) { return 0, b.err }
func (b failingBody) Close() error             { return nil }

func TestClassifyBody(t *testing.T) {
	classify := func(err error) error { return &TransientError{Err: err} }
	tests := []struct {
		name          string
		err           error
		wantRetryable bool
	}{
		{name: "EOF passes", err: io.EOF},
		{name: "reset is classified", err: errors.New("connection reset"), wantRetryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClassifyBody(failingBody{tt.err}, classify).Read(make([]byte, 1))
			if Retryable(err) != tt.wantRetryable || !errors.Is(err, tt.err) {
				t.Errorf("Read: %v; want retryable %v wrapping %v", err, tt.wantRetryable, tt.err)
			}
			if tt.err == io.EOF && err != io.EOF {
				t.Errorf("Read: %v; want io.EOF itself", err)
			}
		})
	}
}
