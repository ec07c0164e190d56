package notifications

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := Config{Endpoints: EndpointList{{Name: "ci", URL: "https://hooks.example.com/x", Secret: "topsecret", Headers: map[string]string{"Authorization": "Bearer hidden"}}}}
		c.SetDefaults()
		return c
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, nil},
		{"bad url", func(c *Config) { c.Endpoints[0].URL = "hooks.example.com" }, []string{"notifications.endpoints[0].url:"}},
		{"unparsable url", func(c *Config) { c.Endpoints[0].URL = "http://[::1" }, []string{"notifications.endpoints[0].url:"}},
		{"ftp url", func(c *Config) { c.Endpoints[0].URL = "ftp://x/y" }, []string{"endpoints[0].url"}},
		{"bad name", func(c *Config) { c.Endpoints[0].Name = "CI hooks" }, []string{"endpoints[0].name"}},
		{"duplicate name", func(c *Config) { c.Endpoints = append(c.Endpoints, c.Endpoints[0]) }, []string{"endpoints[1].name: \"ci\" is also the name of endpoints[0]"}},
		{"bad format", func(c *Config) { c.Endpoints[0].Format = "xml" }, []string{"endpoints[0].format"}},
		{"bad media type option", func(c *Config) { c.Endpoints[0].DistributionMediaType = "v3" }, []string{"endpoints[0].distribution_media_type"}},
		{"bad action", func(c *Config) { c.Endpoints[0].Filters.Actions = []Action{"push", "pul"} }, []string{"endpoints[0].filters.actions[1]"}},
		{"bad glob", func(c *Config) { c.Endpoints[0].Filters.Repositories = []string{"team/["} }, []string{"endpoints[0].filters.repositories[0]"}},
		{"bad media glob", func(c *Config) { c.Endpoints[0].Filters.MediaTypes = []string{"a/["} }, []string{"endpoints[0].filters.media_types[0]"}},
		{"reserved header", func(c *Config) { c.Endpoints[0].Headers["content-type"] = "x" }, []string{"endpoints[0].headers: content-type is set by every delivery"}},
		{"bad header value", func(c *Config) { c.Endpoints[0].Headers["X-A"] = "a\nb" }, []string{"endpoints[0].headers: the value of X-A"}},
		{"timeout", func(c *Config) { c.Endpoints[0].Timeout = time.Hour }, []string{"endpoints[0].timeout"}},
		{"secret whitespace", func(c *Config) { c.Endpoints[0].Secret = "topsecret\n" }, []string{"endpoints[0].secret: has leading or trailing whitespace"}},
		{"backoff inverted", func(c *Config) { c.Backoff.Max = c.Backoff.Min / 2 }, []string{"notifications.backoff.max"}},
		{"everything at once", func(c *Config) {
			c.MaxAge, c.StreamMaxLength, c.ClaimIdle = time.Second, 5, time.Millisecond
			c.Endpoints[0].URL = ""
		}, []string{"notifications.max_age", "notifications.stream_max_length", "notifications.claim_idle", "endpoints[0].url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate("notifications")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, secret := range []string{"topsecret", "Bearer hidden"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals a secret: %q", err)
				}
			}
		})
	}
}

func TestEndpointListFromText(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{"json", `[{"name":"a","url":"http://x/","timeout":"2s","filters":{"actions":["push"]}}]`, 1, false},
		{"yaml", "- name: a\n  url: http://x/\n- name: b\n  url: http://y/\n", 2, false},
		{"unknown key", `[{"name":"a","uri":"http://x/"}]`, 0, true},
		{"not a list", `{"name":"a"}`, 0, true},
	}
	for _, tt := range tests {
		var l EndpointList
		err := l.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || len(l) != tt.want {
			t.Errorf("%s: %d endpoints, err %v; want %d, error %v", tt.name, len(l), err, tt.want, tt.wantErr)
		}
	}
	var l EndpointList
	if err := l.UnmarshalText([]byte(tests[0].in)); err == nil && l[0].Timeout != 2*time.Second {
		t.Errorf("timeout = %v, want 2s", l[0].Timeout)
	}
}

func TestEndpointLogValueHidesSecrets(t *testing.T) {
	e := Endpoint{Name: "a", URL: "https://user:pw@x/y", Secret: "topsecret", Headers: map[string]string{"Authorization": "Bearer hidden"}}
	s := e.LogValue().String()
	for _, secret := range []string{"topsecret", "Bearer hidden", "pw@"} {
		if strings.Contains(s, secret) {
			t.Errorf("log value %q reveals %q", s, secret)
		}
	}
}
