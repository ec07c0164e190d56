package ratelimit

import (
	"context"
	"time"
)

// KindUploads is the limit kind of UploadLimit in the metrics.
const KindUploads = "uploads_per_repository"

// maxUploadRetryAfter caps the Retry-After of a full repository: a slot
// frees when any upload finishes, which is usually long before the oldest
// one would expire (a day by default), and a client told to wait a day
// gives up.
const maxUploadRetryAfter = 30 * time.Second

// UploadLimit bounds the upload sessions open at once per repository; it
// is the registry's UploadSlots.
type UploadLimit struct {
	Slots Slots
	// Limit is the most sessions one repository may have open.
	Limit   int
	Metrics *Metrics
}

func uploadKey(repo string) string { return "uploads:" + repo }

// AcquireUpload takes (or renews) a slot for upload id in repo for ttl,
// the session's own: a slot never released lapses with its session.
func (u UploadLimit) AcquireUpload(ctx context.Context, repo, id string, ttl time.Duration) (bool, time.Duration, error) {
	d, err := u.Slots.Acquire(ctx, uploadKey(repo), id, u.Limit, ttl)
	if err != nil {
		u.Metrics.Failed(KindUploads)
		return false, 0, err
	}
	if !d.Allowed {
		u.Metrics.Rejected(KindUploads)
	}
	return d.Allowed, min(d.RetryAfter, maxUploadRetryAfter), nil
}

// ReleaseUpload frees the slot of a finished or cancelled upload.
func (u UploadLimit) ReleaseUpload(ctx context.Context, repo, id string) error {
	return u.Slots.Release(ctx, uploadKey(repo), id)
}
