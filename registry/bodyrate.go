package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Limits bound what one request may cost the process, apart from content
// rules: how slowly it may send its body.
type Limits struct {
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second averaged over BodyRateWindow, once BodyRateGrace has passed;
	// a slower one is cut off, so that a trickling client cannot hold an
	// upload lease and its buffers for hours. 0 turns the check off.
	MinBodyRate    int64
	BodyRateWindow time.Duration
	BodyRateGrace  time.Duration
}

// errBodyTooSlow is what a request body cut off for trickling reads as.
var errBodyTooSlow = errors.New("request body arrived slower than limits.min_body_rate")

// readDeadliner is the part of http.ResponseController the rate check
// needs.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// rateReader cuts off a body whose bytes per window fall below a minimum.
// A client that stops sending never returns from Read, so each window is
// also the connection's read deadline: a stall ends in a timeout, which
// reads as errBodyTooSlow.
type rateReader struct {
	r        io.ReadCloser
	conn     readDeadliner
	lim      Limits
	now      func() time.Time
	winEnd   time.Time
	winBytes int64
	err      error
}

// limitBodyRate wraps r's body with the rate check of lim, when it has a
// body and the check is on. The deadline applies to the connection: it is
// cleared once the body has been read whole.
func limitBodyRate(w http.ResponseWriter, r *http.Request, lim Limits) {
	if lim.MinBodyRate <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	rr := &rateReader{r: r.Body, conn: http.NewResponseController(w), lim: lim, now: time.Now}
	rr.startWindow(rr.now().Add(lim.BodyRateGrace))
	r.Body = rr
}

// startWindow begins a window ending one BodyRateWindow after from.
func (rr *rateReader) startWindow(from time.Time) {
	rr.winEnd, rr.winBytes = from.Add(rr.lim.BodyRateWindow), 0
	// A writer without deadlines (a test recorder) only gets the check
	// between reads.
	rr.conn.SetReadDeadline(rr.winEnd)
}

func (rr *rateReader) Read(p []byte) (int, error) {
	if rr.err != nil {
		return 0, rr.err
	}
	n, err := rr.r.Read(p)
	rr.winBytes += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, rr.cut()
	}
	if err == io.EOF {
		rr.conn.SetReadDeadline(time.Time{})
		return n, err
	}
	if now := rr.now(); !now.Before(rr.winEnd) {
		if rr.winBytes < rr.want() {
			return n, rr.cut()
		}
		rr.startWindow(now)
	}
	return n, err
}

// want is the least a window must carry.
func (rr *rateReader) want() int64 {
	return int64(float64(rr.lim.MinBodyRate) * rr.lim.BodyRateWindow.Seconds())
}

func (rr *rateReader) cut() error {
	rr.err = fmt.Errorf("%w: %d bytes in the last %s, want %d", errBodyTooSlow, rr.winBytes, rr.lim.BodyRateWindow, rr.want())
	return rr.err
}

func (rr *rateReader) Close() error { return rr.r.Close() }

// errSlowBody is the answer to a request whose body was cut off: 408, and
// the connection closes (its read side is past its deadline).
func errSlowBody(err error, offset int64) *apiError {
	return newError(codeBlobUploadInvalid, "%v; resend the chunk from byte %d faster", err, offset).
		withStatus(http.StatusRequestTimeout).
		withHeader("Connection", "close").
		withHeader("Range", rangeHeader(offset))
}
