package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stratus-registry/stratus/auth/policy"
	"github.com/stratus-registry/stratus/registry"
)

type fixedPasswords map[string]string

func (f fixedPasswords) Authenticate(_ context.Context, user, password string) error {
	if p, ok := f[user]; ok && p == password {
		return nil
	}
	return errors.New("bad password")
}

func TestSessionHooks(t *testing.T) {
	p, err := policy.New(policy.Config{Rules: []policy.Rule{
		{Repository: "public/**", Anonymous: true, Actions: []string{"pull"}},
		{Repository: "team/**", Users: []string{"alice"}, Actions: []string{"pull", "delete"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Realm: "r", Passwords: fixedPasswords{"alice": "pw"}, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	if !a.ChecksPasswords() {
		t.Error("ChecksPasswords is false with a password checker")
	}
	tests := []struct {
		user, repo string
		action     registry.Action
		want       bool
	}{
		{"", "public/x", registry.ActionPull, true},
		{"", "team/x", registry.ActionPull, false},
		{"alice", "team/x", registry.ActionDelete, true},
		{"alice", "team/x", registry.ActionPush, false},
		{"bob", "team/x", registry.ActionPull, false},
	}
	for _, tt := range tests {
		if got := a.CanUser(t.Context(), tt.user, tt.repo, tt.action); got != tt.want {
			t.Errorf("CanUser(%q, %s, %s) = %v", tt.user, tt.repo, tt.action, got)
		}
		// A request made with the session user's context is decided the
		// same way, whatever its Authorization header says.
		r := httptest.NewRequest("DELETE", "/v2/"+tt.repo+"/manifests/x", nil)
		r.SetBasicAuth("mallory", "guess")
		ctx := a.WithSessionUser(r.Context(), tt.user)
		err := a.Authorize(ctx, r.WithContext(ctx), registry.Access{Repository: tt.repo, Action: tt.action})
		if (err == nil) != tt.want {
			t.Errorf("Authorize as session user %q on %s %s: %v", tt.user, tt.repo, tt.action, err)
		}
		if IdentityFrom(ctx).Name != tt.user {
			t.Errorf("identity %q, want %q", IdentityFrom(ctx).Name, tt.user)
		}
	}
}
