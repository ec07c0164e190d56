package token

import (
	"context"
	"testing"

	"github.com/stratus-registry/stratus/auth/scope"
)

// BenchmarkVerify is the cost every authenticated request pays: one
// signature check and the claim checks, per key type.
func BenchmarkVerify(b *testing.B) {
	f := newVerifierFixture(b)
	access := scope.Scope{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}
	for _, k := range []struct {
		name string
		key  testKey
	}{{"ES256", f.ec}, {"RS256", f.rsa}, {"EdDSA", f.ed}} {
		raw := sign(b, k.key, goodClaims("alice", access), nil)
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := f.v.Verify(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
