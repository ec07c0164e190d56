package ratelimit

import (
	"context"
	"testing"
	"time"
)

type userKey struct{}

func asUser(name string) context.Context {
	return context.WithValue(context.Background(), userKey{}, name)
}

func TestUploadLimitPerUser(t *testing.T) {
	slots := NewMemorySlots()
	u := UploadLimit{
		Slots: slots, Limit: 3, PerUser: 2,
		User: func(ctx context.Context) string { s, _ := ctx.Value(userKey{}).(string); return s },
	}
	alice, bob, anon := asUser("alice"), asUser("bob"), context.Background()
	steps := []struct {
		name     string
		ctx      context.Context
		repo, id string
		release  bool
		want     bool
	}{
		{"alice 1 in a", alice, "a", "u1", false, true},
		{"alice 2 in b", alice, "b", "u2", false, true},
		{"alice 3 refused: her limit, across repositories", alice, "c", "u3", false, false},
		{"renewing a held slot is allowed", alice, "a", "u1", false, true},
		{"bob has his own allowance", bob, "c", "u4", false, true},
		{"anonymous: only the repository limit", anon, "c", "u5", false, true},
		{"the refused user slot gave c's slot back", anon, "c", "u6", false, true},
		{"c is now full", anon, "c", "u7", false, false},
		{"alice releases u2", alice, "b", "u2", true, true},
		{"and may start another", alice, "b", "u8", false, true},
	}
	for _, s := range steps {
		if s.release {
			if err := u.ReleaseUpload(s.ctx, s.repo, s.id); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			continue
		}
		ok, retry, err := u.AcquireUpload(s.ctx, s.repo, s.id, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if ok != s.want {
			t.Fatalf("%s: allowed = %v, want %v", s.name, ok, s.want)
		}
		if !ok && (retry <= 0 || retry > maxUploadRetryAfter) {
			t.Fatalf("%s: retry after %s, want in (0, %s]", s.name, retry, maxUploadRetryAfter)
		}
	}
}
