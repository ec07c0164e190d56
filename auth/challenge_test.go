package auth

import (
	"testing"

	"github.com/stratus-registry/stratus/auth/scope"
	"github.com/stratus-registry/stratus/registry"
)

func TestChallenges(t *testing.T) {
	sc := func(s string) []scope.Scope {
		out, err := scope.ParseAll(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name, got, want string
	}{
		{"basic", BasicChallenge("Stratus"), `Basic realm="Stratus"`},
		{"basic quoted", BasicChallenge(`a "b" \c` + "\r\n"), `Basic realm="a \"b\" \\c"`},
		{"bearer login", BearerChallenge("https://auth.example/token", "registry.example", nil, ""),
			`Bearer realm="https://auth.example/token",service="registry.example"`},
		{"bearer scope", BearerChallenge("https://a/t", "reg", sc("repository:team/app:pull,push"), ""),
			`Bearer realm="https://a/t",service="reg",scope="repository:team/app:pull,push"`},
		{"bearer host:port name, two scopes, insufficient", BearerChallenge("https://a/t", "reg",
			sc("repository:localhost:5000/app:pull repository:x:delete"), ErrorInsufficientScope),
			`Bearer realm="https://a/t",service="reg",scope="repository:localhost:5000/app:pull repository:x:delete",error="insufficient_scope"`},
		{"bearer invalid token, no service", BearerChallenge("https://a/t", "", sc("registry:catalog:*"), ErrorInvalidToken),
			`Bearer realm="https://a/t",scope="registry:catalog:*",error="invalid_token"`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestScopesFor(t *testing.T) {
	for _, tc := range []struct {
		acc  registry.Access
		want string
	}{
		{registry.Access{Repository: "a/b", Action: registry.ActionPull}, "repository:a/b:pull"},
		{registry.Access{Repository: "a/b", Action: registry.ActionPush}, "repository:a/b:pull,push"},
		{registry.Access{Repository: "a/b", Action: registry.ActionDelete}, "repository:a/b:delete"},
		{registry.Access{Action: registry.ActionCatalog}, "registry:catalog:*"},
		{registry.Access{Action: registry.ActionLogin}, ""},
	} {
		if got := scope.Join(ScopesFor(tc.acc)); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.acc, got, tc.want)
		}
	}
}
