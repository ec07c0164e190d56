package storage

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"5MiB", 5 << 20, false},
		{"5 mib", 5 << 20, false},
		{"4M", 4 << 20, false},
		{"1GiB", 1 << 30, false},
		{"100MB", 100_000_000, false},
		{"2b", 2, false},
		{"", 0, true},
		{"-1", 0, true},
		{"5XB", 0, true},
		{"1.5MiB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{0: "0", 5 << 20: "5MiB", 1536: "1536", 1 << 30: "1GiB"} {
		if got := in.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", in, got, want)
		}
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"a": true, "a/b/c": true, "blobs/sha256/ab/abcd": true,
		"": false, "/a": false, "a/": false, "a//b": false, "a/../b": false, "./a": false, "a\\b": false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}
