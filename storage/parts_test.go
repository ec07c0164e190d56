package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

func TestPartUpload(t *testing.T) {
	const partSize = 4
	boom := errors.New("boom")
	tests := []struct {
		name          string
		rest          io.Reader // after the first part, "abcd"
		size          int64
		maxParts      int
		failPart      int // 1-based; 0: none
		cancel        bool
		wantTotal     int64
		wantParts     int
		wantRead      string
		wantUploadErr error
	}{
		{name: "first part only", rest: strings.NewReader(""), size: -1, maxParts: 10, wantTotal: 4, wantParts: 1},
		{name: "several, short last", rest: strings.NewReader("efghijklm"), size: 13, maxParts: 10, wantTotal: 13, wantParts: 4},
		{name: "exact parts", rest: strings.NewReader("efgh"), size: -1, maxParts: 2, wantTotal: 8, wantParts: 2},
		{name: "too many parts", rest: strings.NewReader("efghi"), size: -1, maxParts: 2, wantTotal: 8, wantParts: 2, wantRead: "exceeds 2 parts of 4"},
		{name: "size disagrees", rest: strings.NewReader("ef"), size: 7, maxParts: 10, wantTotal: 6, wantParts: 2, wantRead: "body is 6 bytes, size says 7"},
		{name: "body fails", rest: io.MultiReader(strings.NewReader("efgh"), iotest.ErrReader(boom)), size: -1, maxParts: 10, wantTotal: 8, wantParts: 2, wantRead: "boom"},
		{name: "send fails", rest: strings.NewReader("efghijkl"), size: -1, maxParts: 10, failPart: 2, wantUploadErr: boom},
		{name: "cancelled", rest: strings.NewReader("efghijkl"), size: -1, maxParts: 10, cancel: true, wantUploadErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var (
				mu       sync.Mutex
				got      = map[int]string{}
				gets     atomic.Int64
				puts     atomic.Int64
				inFlight atomic.Int64
				maxIn    atomic.Int64
			)
			p := PartUpload{
				Concurrency: 2, MaxParts: tt.maxParts, PartSize: partSize,
				GetBuf: func() *[]byte { gets.Add(1); b := make([]byte, partSize); return &b },
				PutBuf: func(*[]byte) { puts.Add(1) },
				Send: func(ctx context.Context, i int, data []byte) error {
					n := inFlight.Add(1)
					defer inFlight.Add(-1)
					for m := maxIn.Load(); n > m && !maxIn.CompareAndSwap(m, n); m = maxIn.Load() {
					}
					if tt.cancel {
						cancel()
						return ctx.Err()
					}
					if i+1 == tt.failPart {
						return boom
					}
					mu.Lock()
					got[i] = string(data)
					mu.Unlock()
					return nil
				},
			}
			first := []byte("abcd")
			total, parts, readErr, uploadErr := p.Run(ctx, &first, tt.rest, tt.size)
			if tt.wantUploadErr != nil {
				if !errors.Is(uploadErr, tt.wantUploadErr) || readErr != nil {
					t.Errorf("Run errors = %v, %v; want upload error %v", readErr, uploadErr, tt.wantUploadErr)
				}
			} else {
				if total != tt.wantTotal || parts != tt.wantParts || uploadErr != nil {
					t.Errorf("Run = %d bytes, %d parts, upload %v; want %d, %d", total, parts, uploadErr, tt.wantTotal, tt.wantParts)
				}
				if (readErr == nil) != (tt.wantRead == "") || (readErr != nil && !strings.Contains(readErr.Error(), tt.wantRead)) {
					t.Errorf("read error = %v; want %q", readErr, tt.wantRead)
				}
			}
			if tt.wantRead == "" && tt.wantUploadErr == nil {
				var all bytes.Buffer
				for i := range parts {
					all.WriteString(got[i])
				}
				if int64(all.Len()) != total || !strings.HasPrefix(all.String(), "abcd") {
					t.Errorf("parts in order = %q; want %d bytes from abcd", all.String(), total)
				}
			}
			if maxIn.Load() > 2 {
				t.Errorf("%d sends at once; want at most Concurrency 2", maxIn.Load())
			}
			if g := gets.Load(); g > 2 || puts.Load() != g+1 {
				t.Errorf("buffers: %d taken, %d given back; want at most 2 taken, all given back with the first", g, puts.Load())
			}
		})
	}
}
