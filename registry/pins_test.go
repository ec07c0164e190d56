package registry

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stratus-registry/stratus/locking/lockingtest"
	lockredis "github.com/stratus-registry/stratus/locking/redis"
)

// TestUnknownBlobProbesLeaveNoPins drives 10,000 HEADs (and some GETs) of
// digests that do not exist against a registry on a real Redis and counts
// the pin keys before and after: a request for a missing blob must leave
// no state behind. A HEAD of a blob that exists still pins it.
func TestUnknownBlobProbesLeaveNoPins(t *testing.T) {
	srv := lockingtest.StartRedis(t)
	cfg := lockredis.Config{Addrs: []string{srv.Addr()}}
	cfg.SetDefaults()
	locks, err := lockredis.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locks.Close() })
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	tr, _ := newTestRegistryWith(t, gcConfig("keep"), locks)
	known := tr.pushBlob("app", []byte("a blob that exists"))

	pinKeys := func() int {
		t.Helper()
		n := 0
		iter := client.Scan(context.Background(), 0, cfg.KeyPrefix+"pin:*", 1000).Iterator()
		for iter.Next(context.Background()) {
			n++
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := pinKeys()
	for i := range 10_000 {
		d := sha([]byte(fmt.Sprintf("missing %d", i)))
		method := "HEAD"
		if i%10 == 0 {
			method = "GET"
		}
		tr.expect(tr.do(method, "/v2/app/blobs/"+d, nil), 404, "")
	}
	after := pinKeys()
	t.Logf("pin keys in Redis: %d before 10,000 unknown-digest requests, %d after", before, after)
	if after != before {
		t.Fatalf("unknown-digest requests left %d pin keys", after-before)
	}
	// The push pinned the blob; forget those pins so the HEAD must take
	// its own: the link of app, then the digest.
	pins := []string{cfg.KeyPrefix + "pin:{" + linkKey("app", mustDigest(t, known)) + "}", cfg.KeyPrefix + "pin:{" + known + "}"}
	if err := client.Del(context.Background(), pins...).Err(); err != nil {
		t.Fatal(err)
	}
	tr.expect(tr.do("HEAD", "/v2/app/blobs/"+known, nil), 200, "")
	for _, k := range pins {
		if ttl, err := client.PTTL(context.Background(), k).Result(); err != nil || ttl <= 0 {
			t.Errorf("HEAD of an existing blob did not pin %s: ttl %v, %v", k, ttl, err)
		}
	}
}

// TestEmptyUploadSessionsAreShortLived: a session that never received a
// byte lives emptySessionTTL, not upload_ttl; its first chunk gives it the
// full upload_ttl, so resumable uploads keep their semantics.
func TestEmptyUploadSessionsAreShortLived(t *testing.T) {
	srv := lockingtest.StartRedis(t)
	cfg := lockredis.Config{Addrs: []string{srv.Addr()}}
	cfg.SetDefaults()
	locks, err := lockredis.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locks.Close() })
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	rcfg := gcConfig("keep")
	rcfg.UploadTTL = 24 * time.Hour
	tr, _ := newTestRegistryWith(t, rcfg, locks)
	r := tr.do("POST", "/v2/app/blobs/uploads/", nil)
	tr.expect(r, 202, "")
	id := r.header.Get("Docker-Upload-UUID")
	key := cfg.KeyPrefix + "session:{upload:" + id + "}"
	ttl := func() time.Duration {
		t.Helper()
		d, err := client.PTTL(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if got := ttl(); got <= 0 || got > emptySessionTTL {
		t.Fatalf("empty session TTL %v, want at most %v", got, emptySessionTTL)
	}
	tr.expect(tr.do("PATCH", r.header.Get("Location"), []byte("first chunk")), 202, "")
	if got := ttl(); got <= emptySessionTTL || got > rcfg.UploadTTL {
		t.Fatalf("session TTL after the first chunk %v, want up to %v", got, rcfg.UploadTTL)
	}
}
