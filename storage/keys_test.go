package storage

import (
	"errors"
	"slices"
	"testing"
)

func TestCheckDriverKey(t *testing.T) {
	tests := []struct {
		key     string
		wantErr bool
	}{
		{"repos/a/tags/latest", false},
		{"_stratus", false},
		{"x/_stratus/y", false},
		{"_stratus/uploads/x", true},
		{"../x", true},
		{"", true},
	}
	for _, tt := range tests {
		err := CheckDriverKey("s3", "put", tt.key)
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrInvalidKey)) {
			t.Errorf("CheckDriverKey(%q) = %v; want error %v (ErrInvalidKey)", tt.key, err, tt.wantErr)
		}
	}
}

func TestPossiblePrefix(t *testing.T) {
	tests := []struct {
		prefix string
		want   bool
	}{
		{"", true},
		{"rep", true},
		{"repos/", true},
		{"repos/a/..", true}, // a key "repos/a/..x" may follow
		{"repos/../", false},
		{"//", false},
		{"/repos", false},
	}
	for _, tt := range tests {
		if got := PossiblePrefix(tt.prefix); got != tt.want {
			t.Errorf("PossiblePrefix(%q) = %v; want %v", tt.prefix, got, tt.want)
		}
	}
}

func TestPageLimit(t *testing.T) {
	tests := []struct{ limit, def, max, want int }{
		{0, 1000, 5000, 1000},
		{-3, 1000, 1000, 1000},
		{7, 1000, 1000, 7},
		{6000, 1000, 5000, 5000},
	}
	for _, tt := range tests {
		if got := PageLimit(tt.limit, tt.def, tt.max); got != tt.want {
			t.Errorf("PageLimit(%d, %d, %d) = %d; want %d", tt.limit, tt.def, tt.max, got, tt.want)
		}
	}
}

func TestStoreKeys(t *testing.T) {
	root := func(k string) string { return "root/" + k }
	tests := []struct {
		keys    []string
		want    []string
		wantErr bool
	}{
		{keys: nil, want: []string{}},
		{keys: []string{"a", "b/c"}, want: []string{"root/a", "root/b/c"}},
		{keys: []string{"a", "_stratus/x"}, wantErr: true},
		{keys: []string{"a", ""}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := StoreKeys("s3", "delete", tt.keys, root)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidKey) || got != nil {
				t.Errorf("StoreKeys(%q) = %q, %v; want ErrInvalidKey", tt.keys, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("StoreKeys(%q) = %q, %v; want %q", tt.keys, got, err, tt.want)
		}
	}
}
