package redis_test

import (
	"fmt"
	"testing"

	"github.com/stratus-registry/stratus/locking/redis"
)

// BenchmarkPinBlob compares what a pull pays the lock store for its two
// pins (the repository's link and the digest): one PinAll against two
// Pins, on the suite's redis-server over a unix socket.
//
//	go test -run '^$' -bench PinBlob ./locking/redis/
func BenchmarkPinBlob(b *testing.B) {
	s, err := redis.New(b.Context(), redis.Config{Addrs: []string{server.Addr()}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, mode := range []string{"pin-all", "two-pins"} {
		b.Run(mode, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				link, d := fmt.Sprintf("bench-link-%d", i%1000), fmt.Sprintf("bench-digest-%d", i%1000)
				if mode == "pin-all" {
					err = s.PinAll(b.Context(), link, d)
				} else if err = s.Pin(b.Context(), link); err == nil {
					err = s.Pin(b.Context(), d)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
