package storage

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrUploadGone is what a multipart handle whose write the store no longer
// has (expired, aborted, committed, reaped) turns into: ErrHandleExpired
// for the resume logic, ErrNotFound for callers that only check that.
var ErrUploadGone = fmt.Errorf("%w (%w)", ErrHandleExpired, ErrNotFound)

// ErrWriterDone is what a Multipart returns after Commit, Abort or a
// failed Append: it must be discarded, and the write resumed from a saved
// handle.
var ErrWriterDone = errors.New("multipart writer is finished or failed; resume from the saved handle")

// HandleHeader opens the multipart handle of the cloud drivers: which
// format and driver wrote it, the root directory and key of the write, and
// the write's random id (NewWriteID), which names its own objects. A driver
// embeds it in its handle state, so the JSON keeps these fields flat.
type HandleHeader struct {
	V      int    `json:"v"`
	Driver string `json:"driver"`
	Root   string `json:"root"`
	Key    string `json:"key"`
	ID     string `json:"id"`
}

// NewHandleHeader is the header of a new write of key, with a fresh id.
func NewHandleHeader(version int, driver, root, key string) HandleHeader {
	return HandleHeader{V: version, Driver: driver, Root: root, Key: key, ID: NewWriteID()}
}

// Check reports what is wrong with a header read back, for a driver of
// that name and handle version under root: another driver or format, a
// handle of another root, an invalid or internal key, a malformed id.
func (h *HandleHeader) Check(version int, driver, root string) error {
	switch {
	case h.V != version || h.Driver != driver:
		return fmt.Errorf("not a handle of the %s driver, version %d", driver, version)
	case h.Root != root:
		return fmt.Errorf("handle is for root %q", h.Root)
	case !ValidKey(h.Key) || strings.HasPrefix(h.Key, InternalDir):
		return fmt.Errorf("invalid key %q", h.Key)
	case !validWriteID(h.ID):
		return errors.New("invalid write id")
	}
	return nil
}

// DecodeHandle unmarshals a handle into st (a pointer to the driver's
// handle state, which embeds hdr) and validates it with check. Either
// failure is an *OpError of op "resume" wrapping ErrHandleExpired: such a
// handle can never be resumed.
func DecodeHandle(driver string, handle []byte, st any, hdr *HandleHeader, check func() error) error {
	if err := json.Unmarshal(handle, st); err != nil {
		return &OpError{Op: "resume", Driver: driver, Err: fmt.Errorf("%w: unreadable handle: %v", ErrHandleExpired, err)}
	}
	if err := check(); err != nil {
		return &OpError{Op: "resume", Driver: driver, Key: hdr.Key, Err: fmt.Errorf("%w: %v", ErrHandleExpired, err)}
	}
	return nil
}

// NewWriteID returns a fresh random id (32 hex digits) for a write's own
// objects, so that two writes of one key never share one.
func NewWriteID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validWriteID(id string) bool {
	return len(id) == 32 && strings.Trim(id, "0123456789abcdef") == ""
}
