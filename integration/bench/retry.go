package main

// A push that behaves like a real client under back-pressure: a 503 or
// 429 is waited out for its Retry-After, then the upload resumes from
// the offset the registry reports.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// retryStats counts what back-pressure cost a batch of pushes.
type retryStats struct {
	refusals  atomic.Int64 // 503 / 429 answers
	transport atomic.Int64 // requests that failed without an answer (the server closed mid-body)
	retried   atomic.Int64 // pushes that needed at least one retry
}

func (s *retryStats) String() string {
	return fmt.Sprintf("%d answers 503/429 with Retry-After, %d requests cut mid-body, %d pushes retried and completed",
		s.refusals.Load(), s.transport.Load(), s.retried.Load())
}

// maxPushAttempts bounds the retries of one push.
const maxPushAttempts = 30

// pushResumable uploads b as POST, one PATCH with the rest of the blob
// (what docker sends) and PUT ?digest=, retrying refused or cut requests.
func (c *client) pushResumable(ctx context.Context, repo string, b *blob, st *retryStats) error {
	var loc string
	var off int64
	retried := false
	for attempt := 0; ; attempt++ {
		if attempt == maxPushAttempts {
			return fmt.Errorf("push %s: still refused after %d attempts", b.Digest, attempt)
		}
		err := c.pushStep(ctx, repo, b, &loc, &off)
		if err == nil {
			if retried {
				st.retried.Add(1)
			}
			return nil
		}
		wait, ok := retryable(err, st)
		if !ok || ctx.Err() != nil {
			return err
		}
		retried = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if loc != "" {
			// Where did the cut request leave the upload?
			if loc, off, err = c.uploadOffset(ctx, loc); err != nil {
				loc, off = "", 0 // the session is gone: start over
			}
		}
	}
}

// pushStep moves the upload forward from (loc, off): opens it, sends the
// rest, commits. It updates loc and off as they advance.
func (c *client) pushStep(ctx context.Context, repo string, b *blob, loc *string, off *int64) error {
	var err error
	if *loc == "" {
		if *loc, err = c.startUpload(ctx, repo); err != nil {
			return err
		}
		*off = 0
	}
	if *off < b.Size {
		n := b.Size - *off
		next, err := c.patch(ctx, *loc, b.Section(*off, n), *off, n)
		if err != nil {
			return err
		}
		*loc, *off = next, b.Size
	}
	return c.commit(ctx, *loc, b.Digest, nil, 0)
}

// retryable says whether err is back-pressure, and how long to wait.
func retryable(err error, st *retryStats) (time.Duration, bool) {
	var se *statusError
	if errors.As(err, &se) {
		if se.code != http.StatusServiceUnavailable && se.code != http.StatusTooManyRequests {
			return 0, false
		}
		st.refusals.Add(1)
		return min(max(se.retryAfter, time.Second), 10*time.Second), true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	st.transport.Add(1)
	return time.Second, true
}

// uploadOffset asks the registry where an upload continues and how many
// bytes of it it holds. "0-0" is read as nothing stored (the spec's
// answer for an empty upload; a one-byte upload of these blobs does not
// happen).
func (c *client) uploadOffset(ctx context.Context, loc string) (string, int64, error) {
	resp, err := c.do(ctx, http.MethodGet, loc, nil, 0, nil, http.StatusNoContent)
	if err != nil {
		return "", 0, err
	}
	drain(resp)
	if resp.Header.Get("Location") != "" {
		if loc, err = c.location(resp); err != nil {
			return "", 0, err
		}
	}
	rng := resp.Header.Get("Range")
	_, last, ok := strings.Cut(rng, "-")
	if !ok || rng == "0-0" {
		return loc, 0, nil
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("upload status: Range %q: %w", rng, err)
	}
	return loc, n + 1, nil
}
