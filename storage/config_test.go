package storage

import (
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		check func(c *ConfigErrors)
		want  []string // substrings, in order; none: valid
	}{
		{name: "nothing", check: func(*ConfigErrors) {}},
		{name: "bucket required", check: func(c *ConfigErrors) { c.Bucket("") }, want: []string{"x.bucket: required"}},
		{name: "bucket path", check: func(c *ConfigErrors) { c.Bucket("a/b") }, want: []string{"x.bucket: \"a/b\" is a bucket name"}},
		{name: "bucket scheme", check: func(c *ConfigErrors) { c.Bucket("gs:b", "gs:") }, want: []string{"not a path or URL"}},
		{name: "bucket ok", check: func(c *ConfigErrors) { c.Bucket("my-bucket", "gs:") }},
		{name: "root ok", check: func(c *ConfigErrors) { c.RootDirectory("/a/b/") }},
		{name: "root bad", check: func(c *ConfigErrors) { c.RootDirectory("a/../b") }, want: []string{"x.root_directory:"}},
		{name: "endpoint empty", check: func(c *ConfigErrors) { c.Endpoint("endpoint", "") }},
		{name: "endpoint ok", check: func(c *ConfigErrors) { c.Endpoint("endpoint", "https://h:9000") }},
		{name: "endpoint bad", check: func(c *ConfigErrors) { c.Endpoint("endpoint", "h:9000") }, want: []string{"x.endpoint: \"h:9000\" is not"}},
		{name: "secret", check: func(c *ConfigErrors) { c.Secret("k", "s\n"); c.Secret("ok", "s") }, want: []string{"x.k: has leading or trailing"}},
		{name: "between", check: func(c *ConfigErrors) { c.Between("n", 0, 1, 64); c.Between("m", 64, 1, 64) }, want: []string{"x.n: must be between 1 and 64"}},
		{name: "timeout", check: func(c *ConfigErrors) { c.Timeout("t", -1); c.Timeout("u", 0) }, want: []string{"x.t: must not be negative"}},
		{name: "all reported", check: func(c *ConfigErrors) { c.Bucket(""); c.Add("a", "bad %d", 1) }, want: []string{"x.bucket: required", "x.a: bad 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ConfigErrors{Prefix: "x."}
			tt.check(&c)
			err := c.Err()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Err() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Err() = nil; want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Err() = %q; want %d problems", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q; want %q", i, lines[i], w)
				}
			}
		})
	}
}
