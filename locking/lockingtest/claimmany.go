package lockingtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratus-registry/stratus/locking"
)

// runClaimMany checks that a batch of claims answers, digest by digest,
// exactly what Claim would, and stays atomic against each digest's pins.
func runClaimMany(t *testing.T, newStore func(t *testing.T) locking.Store) {
	t.Run("each digest of a batch is claimed as Claim would", func(t *testing.T) { testClaimManyStates(t, newStore(t)) })
	t.Run("an empty batch claims nothing", func(t *testing.T) {
		s := newStore(t)
		got, err := s.ClaimMany(context.Background(), nil, storeNow(t, s), longTTL)
		if err != nil || len(got) != 0 {
			t.Fatalf("ClaimMany(nil) = %v, %v; want [], nil", got, err)
		}
		if err := s.UnclaimMany(context.Background(), nil); err != nil {
			t.Fatalf("UnclaimMany(nil) = %v", err)
		}
	})
	t.Run("batch claims race pins atomically per digest", func(t *testing.T) { testClaimManyRace(t, newStore(t)) })
}

func testClaimManyStates(t *testing.T, s locking.Store) {
	ctx := context.Background()
	pinnedBefore, pinnedAfter, claimed, fresh := randKey("digest"), randKey("digest"), randKey("digest"), randKey("digest")
	if err := s.Pin(ctx, pinnedBefore); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the store clock moves past the pin
	since := storeNow(t, s)
	if err := s.Pin(ctx, pinnedAfter); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, claimed, since, longTTL); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	cases := []struct {
		name   string
		digest string
		want   bool
	}{
		{"pinned only before notPinnedSince", pinnedBefore, true},
		{"pinned since notPinnedSince", pinnedAfter, false},
		{"claimed already", claimed, false},
		{"never pinned", fresh, true},
		{"the same digest again in the batch", fresh, false},
	}
	batch := make([]string, len(cases))
	for i, c := range cases {
		batch[i] = c.digest
	}
	got, err := s.ClaimMany(ctx, batch, since, longTTL)
	if err != nil {
		t.Fatalf("ClaimMany: %v", err)
	}
	if len(got) != len(cases) {
		t.Fatalf("ClaimMany answered %d digests of %d", len(got), len(cases))
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("%s: claimed = %v, want %v", c.name, got[i], c.want)
		}
	}
	for _, d := range []string{pinnedBefore, fresh} {
		if err := s.Pin(ctx, d); !errors.Is(err, locking.ErrDeleting) {
			t.Errorf("Pin of a digest ClaimMany claimed: %v, want ErrDeleting", err)
		}
	}
	if err := s.Pin(ctx, pinnedAfter); err != nil {
		t.Errorf("Pin of a digest ClaimMany refused: %v", err)
	}
	if err := s.UnclaimMany(ctx, []string{pinnedBefore, fresh, claimed, randKey("digest")}); err != nil {
		t.Fatalf("UnclaimMany: %v", err)
	}
	for _, d := range []string{pinnedBefore, fresh, claimed} {
		if err := s.Pin(ctx, d); err != nil {
			t.Errorf("Pin after UnclaimMany: %v", err)
		}
	}
}

// testClaimManyRace is testPinRace for batches: pinners pin random digests
// of the batch while it is claimed, and for every digest the claim holds
// exactly when no pin of it succeeded.
func testClaimManyRace(t *testing.T, s locking.Store) {
	const (
		rounds  = 20
		batch   = 16
		pinners = 4
		pins    = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var won int
	for round := range rounds {
		ds := make([]string, batch)
		for i := range ds {
			ds[i] = randKey("raced-batch")
		}
		since := storeNow(t, s)
		pinned, claimed, errs := raceRound(ctx, ds, pinners, pins, func(k string) error { return s.Pin(ctx, k) },
			func() ([]bool, error) { return s.ClaimMany(ctx, ds, since, longTTL) })
		for _, err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range ds {
			if claimed[i] && pinned[i] > 0 {
				t.Fatalf("round %d: digest %d claimed and pinned %d times: a pinned blob would be deleted", round, i, pinned[i])
			}
			if !claimed[i] && pinned[i] == 0 {
				t.Fatalf("round %d: digest %d refused though no pin of it succeeded", round, i)
			}
			if claimed[i] {
				won++
			}
		}
		if err := s.UnclaimMany(ctx, ds); err != nil {
			t.Fatalf("UnclaimMany: %v", err)
		}
	}
	t.Logf("claims won %d of %d digests", won, rounds*batch)
}
