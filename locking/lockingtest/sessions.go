package lockingtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

func runSessions(t *testing.T, newStore func(t *testing.T) locking.Store) {
	ctx := context.Background()

	t.Run("create get delete", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		if _, err := s.Get(ctx, id); !errors.Is(err, locking.ErrNotFound) {
			t.Errorf("Get before Create: %v, want ErrNotFound", err)
		}
		if err := s.Create(ctx, id, []byte("first"), longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := s.Create(ctx, id, []byte("second"), longTTL); !errors.Is(err, locking.ErrExists) {
			t.Errorf("second Create: %v, want ErrExists", err)
		}
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		sameBytes(t, "Get", got, []byte("first"))
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, locking.ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Errorf("Delete of a missing record: %v", err)
		}
		if err := s.Create(ctx, id, []byte("again"), longTTL); err != nil {
			t.Errorf("Create after Delete: %v", err)
		}
	})

	t.Run("empty record is kept", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		if err := s.Create(ctx, id, nil, longTTL); err != nil {
			t.Fatalf("Create: %v", err)
		}
		got, err := s.Get(ctx, id)
		if err != nil || len(got) != 0 {
			t.Errorf("Get = %q, %v; want an empty record", got, err)
		}
	})

	t.Run("update needs the session lease", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		if err := s.Create(ctx, id, []byte("v1"), longTTL); err != nil {
			t.Fatal(err)
		}
		other := mustAcquire(t, s, randKey("lease"), longTTL)
		for name, l := range map[string]locking.Lease{
			"no lease":             {},
			"lease of another key": other,
			"unheld lease":         {Key: locking.SessionLeaseKey(id), Token: other.Token, Holder: other.Holder},
		} {
			if err := s.Update(ctx, l, id, []byte("bad"), longTTL); !errors.Is(err, locking.ErrLost) {
				t.Errorf("Update with %s: %v, want ErrLost", name, err)
			}
		}
		l := mustAcquire(t, s, locking.SessionLeaseKey(id), longTTL)
		if err := s.Update(ctx, l, id, []byte("v2"), longTTL); err != nil {
			t.Fatalf("Update by the holder: %v", err)
		}
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "Get after Update", got, []byte("v2"))

		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, l, id, []byte("v3"), longTTL); !errors.Is(err, locking.ErrNotFound) {
			t.Errorf("Update of a deleted record: %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, locking.ErrNotFound) {
			t.Errorf("Update recreated a deleted record: Get = %v", err)
		}
	})

	t.Run("stale lease holder cannot update", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		if err := s.Create(ctx, id, []byte("v1"), longTTL); err != nil {
			t.Fatal(err)
		}
		stale := mustAcquire(t, s, locking.SessionLeaseKey(id), shortTTL)
		if err := s.Update(ctx, stale, id, []byte("v2"), longTTL); err != nil {
			t.Fatalf("Update while holding: %v", err)
		}
		fresh := takeOver(t, s, locking.SessionLeaseKey(id), longTTL)
		if err := s.Update(ctx, stale, id, []byte("stale"), longTTL); !errors.Is(err, locking.ErrLost) {
			t.Errorf("Update by the stale holder: %v, want ErrLost", err)
		}
		if err := s.Update(ctx, fresh, id, []byte("v3"), longTTL); err != nil {
			t.Fatalf("Update by the new holder: %v", err)
		}
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "Get", got, []byte("v3"))
	})

	t.Run("record expires after its ttl", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		if err := s.Create(ctx, id, []byte("v1"), shortTTL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "record expiry", func() (bool, string) {
			_, err := s.Get(ctx, id)
			if err != nil && !errors.Is(err, locking.ErrNotFound) {
				t.Fatalf("Get: %v", err)
			}
			return err != nil, errString(err)
		})
		if err := s.Create(ctx, id, []byte("v2"), longTTL); err != nil {
			t.Errorf("Create after expiry: %v", err)
		}
	})

	t.Run("update resets the ttl", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		if err := s.Create(ctx, id, []byte("v1"), shortTTL); err != nil {
			t.Fatal(err)
		}
		l := mustAcquire(t, s, locking.SessionLeaseKey(id), longTTL)
		if err := s.Update(ctx, l, id, []byte("v2"), longTTL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * shortTTL)
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("Get past the create ttl of an updated record: %v", err)
		}
	})

	t.Run("large records", func(t *testing.T) {
		s := newStore(t)
		id := randKey("session")
		big := randomBytes(1 << 20)
		if err := s.Create(ctx, id, big, longTTL); err != nil {
			t.Fatalf("Create 1 MiB: %v", err)
		}
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "Get 1 MiB", got, big)
		l := mustAcquire(t, s, locking.SessionLeaseKey(id), longTTL)
		big2 := randomBytes(1 << 20)
		if err := s.Update(ctx, l, id, big2, longTTL); err != nil {
			t.Fatalf("Update 1 MiB: %v", err)
		}
		got, err = s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "Get after 1 MiB Update", got, big2)
	})
}
