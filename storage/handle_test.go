package storage

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type testHandle struct {
	HandleHeader
	Bucket string `json:"bucket"`
}

func TestHandleHeaderCheck(t *testing.T) {
	good := NewHandleHeader(1, "s3", "root/", "blobs/x")
	tests := []struct {
		name   string
		change func(h *HandleHeader)
		want   string
	}{
		{name: "good", change: func(*HandleHeader) {}},
		{name: "version", change: func(h *HandleHeader) { h.V = 2 }, want: "not a handle of the s3 driver"},
		{name: "driver", change: func(h *HandleHeader) { h.Driver = "gcs" }, want: "not a handle of the s3 driver"},
		{name: "root", change: func(h *HandleHeader) { h.Root = "" }, want: "handle is for root"},
		{name: "bad key", change: func(h *HandleHeader) { h.Key = "../x" }, want: "invalid key"},
		{name: "internal key", change: func(h *HandleHeader) { h.Key = InternalDir + "x" }, want: "invalid key"},
		{name: "short id", change: func(h *HandleHeader) { h.ID = h.ID[1:] }, want: "invalid write id"},
		{name: "upper-case id", change: func(h *HandleHeader) { h.ID = strings.ToUpper(h.ID[:31]) + "Z" }, want: "invalid write id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good
			tt.change(&h)
			err := h.Check(1, "s3", "root/")
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check = %v; want %q", err, tt.want)
			}
		})
	}
}

func TestNewWriteID(t *testing.T) {
	a, b := NewWriteID(), NewWriteID()
	if !validWriteID(a) || !validWriteID(b) || a == b {
		t.Errorf("NewWriteID() = %q, %q; want two different 32-digit hex ids", a, b)
	}
}

func TestDecodeHandle(t *testing.T) {
	good := testHandle{HandleHeader: NewHandleHeader(1, "s3", "", "k"), Bucket: "b"}
	b, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	// The header's fields are flat in the JSON, as the drivers wrote them
	// before the header was shared.
	var flat map[string]any
	if err := json.Unmarshal(b, &flat); err != nil || flat["key"] != "k" || flat["bucket"] != "b" || flat["v"] != 1.0 {
		t.Errorf("handle JSON %s is not flat", b)
	}
	tests := []struct {
		name    string
		handle  []byte
		checkOK bool
		wantKey string
		wantErr bool
	}{
		{name: "good", handle: b, checkOK: true},
		{name: "unreadable", handle: []byte("{"), checkOK: true, wantErr: true},
		{name: "rejected", handle: b, wantKey: "k", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st testHandle
			err := DecodeHandle("s3", tt.handle, &st, &st.HandleHeader, func() error {
				if tt.checkOK {
					return st.Check(1, "s3", "")
				}
				return errors.New("bucket mismatch")
			})
			if !tt.wantErr {
				if err != nil || st != good {
					t.Errorf("DecodeHandle = %+v, %v; want %+v", st, err, good)
				}
				return
			}
			var op *OpError
			if !errors.Is(err, ErrHandleExpired) || !errors.As(err, &op) || op.Op != "resume" || op.Key != tt.wantKey {
				t.Errorf("DecodeHandle: %v; want a resume OpError for %q wrapping ErrHandleExpired", err, tt.wantKey)
			}
		})
	}
}

func TestErrUploadGone(t *testing.T) {
	if !errors.Is(ErrUploadGone, ErrHandleExpired) || !errors.Is(ErrUploadGone, ErrNotFound) {
		t.Errorf("ErrUploadGone = %v; want both ErrHandleExpired and ErrNotFound", ErrUploadGone)
	}
}
