package registry

import (
	"fmt"
	"strconv"
	"strings"
)

// maxBlobOffset bounds every byte offset a client may name in an upload:
// 64 TiB, more than any object store holds in one object (S3's limit is
// 5 TiB). Below it, end-start+1 and offset+length cannot overflow an int64,
// so the length arithmetic of the callers is safe by construction.
const maxBlobOffset int64 = 1 << 46

// parseContentRange parses the Content-Range of an upload chunk, which the
// distribution spec writes as "<start>-<end>" (inclusive). Some clients send
// the RFC 9110 form "bytes <start>-<end>/<total>"; both are accepted. A range
// whose end reaches maxBlobOffset is refused, so the chunk's length
// end-start+1 is always positive and at most maxBlobOffset.
func parseContentRange(s string) (start, end int64, err error) {
	v := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(v, "bytes"); ok {
		v = strings.TrimLeft(rest, " =")
		if i := strings.IndexByte(v, '/'); i >= 0 {
			v = v[:i]
		}
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: want <start>-<end>", s)
	}
	start, err1 := parseOffset(a)
	end, err2 := parseOffset(b)
	if err1 != nil || err2 != nil || end < start {
		return 0, 0, fmt.Errorf("content-range %q: want <start>-<end> with start <= end", s)
	}
	if end >= maxBlobOffset {
		return 0, 0, fmt.Errorf("content-range %q: a blob may not extend past byte %d", s, maxBlobOffset-1)
	}
	return start, end, nil
}

// parseOffset accepts a non-negative decimal without sign or spaces.
func parseOffset(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, fmt.Errorf("bad offset %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad offset %q", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// byteRange is a resolved, satisfiable range of a blob.
type byteRange struct{ start, length int64 }

// errRangeUnsatisfiable: the Range header parsed but selects no byte of the
// blob; the answer is 416 with "Content-Range: bytes */<size>".
var errRangeUnsatisfiable = fmt.Errorf("range not satisfiable")

// parseRange resolves a single-range "Range: bytes=..." header against a
// blob of the given size (RFC 9110 §14.1.2). ok is false when the header
// should be ignored (absent, another unit, several ranges: the whole blob is
// served, which RFC 9110 allows).
func parseRange(h string, size int64) (r byteRange, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if h == "" || !found || strings.Contains(spec, ",") {
		return byteRange{}, false, nil
	}
	a, b, dash := strings.Cut(strings.TrimSpace(spec), "-")
	if !dash {
		return byteRange{}, false, fmt.Errorf("range %q: %w", h, errRangeUnsatisfiable)
	}
	if a == "" { // suffix: the last n bytes
		n, err := parseOffset(b)
		if err != nil || n == 0 || size == 0 {
			return byteRange{}, false, fmt.Errorf("range %q: %w", h, errRangeUnsatisfiable)
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, true, nil
	}
	start, err := parseOffset(a)
	if err != nil || start >= size {
		return byteRange{}, false, fmt.Errorf("range %q: %w", h, errRangeUnsatisfiable)
	}
	end := size - 1
	if b != "" {
		e, err := parseOffset(b)
		if err != nil || e < start {
			return byteRange{}, false, fmt.Errorf("range %q: %w", h, errRangeUnsatisfiable)
		}
		end = min(e, size-1)
	}
	return byteRange{start: start, length: end - start + 1}, true, nil
}
