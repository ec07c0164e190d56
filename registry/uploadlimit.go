package registry

import (
	"context"
	"strconv"
	"time"
)

// UploadSlots bound the upload sessions open at once in one repository
// (limits.uploads_per_repository), shared by every replica. A slot expires
// on its own with the session's ttl, so a client that never finishes (or a
// replica that crashes before releasing) cannot hold one forever.
type UploadSlots interface {
	// AcquireUpload takes a slot for upload id in repo for ttl (the
	// session's), or renews the slot id holds; ok is false when the
	// repository is at its limit, with the time until a slot frees.
	AcquireUpload(ctx context.Context, repo, id string, ttl time.Duration) (ok bool, retryAfter time.Duration, err error)
	// ReleaseUpload frees the slot of a finished or cancelled upload.
	ReleaseUpload(ctx context.Context, repo, id string) error
}

// acquireUploadSlot answers 429 TOOMANYREQUESTS when repo has too many
// open uploads. A failing slot store does not refuse the upload: the
// session itself needs the same store, and its own error decides.
func (g *Registry) acquireUploadSlot(ctx context.Context, repo, id string, ttl time.Duration) error {
	if g.uploadSlots == nil {
		return nil
	}
	ok, retryAfter, err := g.uploadSlots.AcquireUpload(ctx, repo, id, ttl)
	if err != nil {
		g.logger.Warn("upload limit unavailable; not enforcing it for this upload", "repo", repo, "upload", id, "err", err)
		return nil
	}
	if ok {
		return nil
	}
	secs := int((retryAfter + time.Second - 1) / time.Second)
	return newError(codeTooManyRequests, "too many uploads in progress in repository %q or by this user; finish or cancel some, or retry later", repo).
		withHeader("Retry-After", strconv.Itoa(max(secs, 1)))
}

// renewUploadSlot keeps an upload's slot alive as long as its session,
// whose ttl every saved chunk extends. It never fails the chunk: a slot
// that lapsed meanwhile only means the upload is not counted.
func (g *Registry) renewUploadSlot(ctx context.Context, repo, id string) {
	if g.uploadSlots == nil {
		return
	}
	if _, _, err := g.uploadSlots.AcquireUpload(ctx, repo, id, g.cfg.UploadTTL); err != nil {
		g.logger.Warn("renewing upload slot", "repo", repo, "upload", id, "err", err)
	}
}

// releaseUploadSlot frees an upload's slot; a failure only delays the
// slot's release until its expiry.
func (g *Registry) releaseUploadSlot(ctx context.Context, repo, id string) {
	if g.uploadSlots == nil {
		return
	}
	if err := g.uploadSlots.ReleaseUpload(context.WithoutCancel(ctx), repo, id); err != nil {
		g.logger.Warn("releasing upload slot; it frees itself when the session would expire", "repo", repo, "upload", id, "err", err)
	}
}
