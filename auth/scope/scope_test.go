package scope

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Scope
		wantErr bool
	}{
		{in: "repository:team/app:pull,push", want: Scope{"repository", "team/app", []string{"pull", "push"}}},
		{in: "repository:localhost:5000/app:pull", want: Scope{"repository", "localhost:5000/app", []string{"pull"}}},
		{in: "registry:catalog:*", want: Scope{"registry", "catalog", []string{"*"}}},
		{in: "repository(plugin):x:pull", want: Scope{"repository(plugin)", "x", []string{"pull"}}},
		{in: "repository:app:pull,pull,,push", want: Scope{"repository", "app", []string{"pull", "push"}}},
		{in: "repository:app:", want: Scope{"repository", "app", nil}},
		{in: "repository:app", wantErr: true},
		{in: "repository", wantErr: true},
		{in: "Repository:app:pull", wantErr: true},
		{in: "repository::pull", wantErr: true},
		{in: "repository:a\"b:pull", wantErr: true},
		{in: "repository:app:PULL", wantErr: true},
		{in: "repository:app:pu*", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse(%q) = %v, %v; want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseAllMergesAndSplits(t *testing.T) {
	got, err := ParseAll("repository:a:pull repository:b:push", "repository:a:push", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Scope{{"repository", "a", []string{"pull", "push"}}, {"repository", "b", []string{"push"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v want %#v", got, want)
	}
	if Join(got) != "repository:a:pull,push repository:b:push" {
		t.Fatalf("Join = %q", Join(got))
	}
}

func TestIntersect(t *testing.T) {
	repo := func(name string, actions ...string) Scope { return Scope{TypeRepository, name, actions} }
	tests := []struct {
		name           string
		asked, granted []Scope
		want           []Scope
	}{
		{"subset granted", []Scope{repo("a", "pull", "push")}, []Scope{repo("a", "pull")}, []Scope{repo("a", "pull")}},
		{"star covers asked", []Scope{repo("a", "pull", "delete")}, []Scope{repo("a", "*")}, []Scope{repo("a", "pull", "delete")}},
		{"asked star needs star", []Scope{repo("a", "*")}, []Scope{repo("a", "pull", "push")}, nil},
		{"other repository grants nothing", []Scope{repo("a", "pull")}, []Scope{repo("b", "pull")}, nil},
		{"type must match", []Scope{{TypeRegistry, "a", []string{"pull"}}}, []Scope{repo("a", "pull")}, nil},
		{"several", []Scope{repo("a", "pull"), repo("b", "push")}, []Scope{repo("b", "push", "pull"), repo("a", "pull")},
			[]Scope{repo("a", "pull"), repo("b", "push")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Intersect(tt.asked, tt.granted); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v want %#v", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"repository:a/b:pull,push", "registry:catalog:*", "repository:h:5000/x:pull", "a:b", ":::", "repository(x):y:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(sc.String())
		if err != nil {
			t.Fatalf("formatted scope %q of %q does not parse: %v", sc.String(), s, err)
		}
		if !reflect.DeepEqual(sc, again) {
			t.Fatalf("round trip of %q: %#v then %#v", s, sc, again)
		}
	})
}
