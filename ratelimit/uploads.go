package ratelimit

import (
	"context"
	"errors"
	"time"
)

// The limit kinds of UploadLimit in the metrics.
const (
	KindUploads        = "uploads_per_repository"
	KindUploadsPerUser = "uploads_per_user"
)

// maxUploadRetryAfter caps the Retry-After of a full repository: a slot
// frees when any upload finishes, which is usually long before the oldest
// one would expire (a day by default), and a client told to wait a day
// gives up.
const maxUploadRetryAfter = 30 * time.Second

// UploadLimit bounds the upload sessions open at once per repository and,
// with PerUser, per authenticated user; it is the registry's UploadSlots.
type UploadLimit struct {
	Slots Slots
	// Limit is the most sessions one repository may have open.
	Limit int
	// PerUser (0: none) is the most sessions one user may have open across
	// repositories; User names the caller of a request ("" for anonymous,
	// whom the per-repository limit alone bounds).
	PerUser int
	User    func(ctx context.Context) string
	Metrics *Metrics
}

func uploadKey(repo string) string { return "uploads:" + repo }

func userUploadKey(user string) string { return "uploads-user:" + user }

// user is the caller the per-user limit counts, or "".
func (u UploadLimit) user(ctx context.Context) string {
	if u.PerUser <= 0 || u.User == nil {
		return ""
	}
	return u.User(ctx)
}

// AcquireUpload takes (or renews) a slot for upload id in repo, and one of
// its user's, for ttl, the session's own: a slot never released lapses
// with its session. A refused user slot gives the repository slot back.
func (u UploadLimit) AcquireUpload(ctx context.Context, repo, id string, ttl time.Duration) (bool, time.Duration, error) {
	ok, retry, err := u.acquire(ctx, KindUploads, uploadKey(repo), id, u.Limit, ttl)
	if err != nil || !ok {
		return ok, retry, err
	}
	user := u.user(ctx)
	if user == "" {
		return true, 0, nil
	}
	ok, retry, err = u.acquire(ctx, KindUploadsPerUser, userUploadKey(user), id, u.PerUser, ttl)
	if err == nil && !ok {
		err = u.Slots.Release(ctx, uploadKey(repo), id)
	}
	return ok, retry, err
}

func (u UploadLimit) acquire(ctx context.Context, kind, key, id string, limit int, ttl time.Duration) (bool, time.Duration, error) {
	d, err := u.Slots.Acquire(ctx, key, id, limit, ttl)
	if err != nil {
		u.Metrics.Failed(kind)
		return false, 0, err
	}
	if !d.Allowed {
		u.Metrics.Rejected(kind)
	}
	return d.Allowed, min(d.RetryAfter, maxUploadRetryAfter), nil
}

// ReleaseUpload frees the slots of a finished or cancelled upload. The
// user's slot is found by the caller of this request: one finished by
// somebody else lapses with the session instead.
func (u UploadLimit) ReleaseUpload(ctx context.Context, repo, id string) error {
	err := u.Slots.Release(ctx, uploadKey(repo), id)
	if user := u.user(ctx); user != "" {
		err = errors.Join(err, u.Slots.Release(ctx, userUploadKey(user), id))
	}
	return err
}
