package storage

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFillBuffer(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		body     io.Reader
		size     int64
		wantN    int
		wantMore bool
		wantErr  string
	}{
		{name: "known size fits", body: strings.NewReader("abc"), size: 3, wantN: 3},
		{name: "known size exactly the buffer", body: strings.NewReader("abcd"), size: 4, wantN: 4},
		{name: "known size, body longer", body: strings.NewReader("abcd"), size: 3, wantN: 3, wantErr: "longer than size 3"},
		{name: "known size, body shorter", body: strings.NewReader("ab"), size: 3, wantN: 2, wantErr: "ended after 2 bytes"},
		{name: "unknown size fits", body: strings.NewReader("ab"), size: -1, wantN: 2},
		{name: "unknown size fills", body: strings.NewReader("abcdef"), size: -1, wantN: 4, wantMore: true},
		{name: "large size fills", body: strings.NewReader("abcdef"), size: 6, wantN: 4, wantMore: true},
		{name: "large size, body short", body: strings.NewReader("ab"), size: 6, wantN: 2, wantErr: "body is 2 bytes, size says 6"},
		{name: "empty", body: strings.NewReader(""), size: -1},
		{name: "body fails", body: iotest.ErrReader(boom), size: -1, wantErr: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, 4)
			n, more, err := FillBuffer(tt.body, buf, tt.size)
			if n != tt.wantN || more != tt.wantMore {
				t.Errorf("FillBuffer = %d, %v; want %d, %v", n, more, tt.wantN, tt.wantMore)
			}
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("FillBuffer error = %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckBodySize(t *testing.T) {
	tests := []struct {
		total, size int64
		wantErr     bool
	}{{5, -1, false}, {5, 5, false}, {5, 6, true}, {6, 5, true}}
	for _, tt := range tests {
		if err := CheckBodySize(tt.total, tt.size); (err != nil) != tt.wantErr {
			t.Errorf("CheckBodySize(%d, %d) = %v; want error %v", tt.total, tt.size, err, tt.wantErr)
		}
	}
}
