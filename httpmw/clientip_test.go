package httpmw

import (
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestForwardedHTTPS(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		remote string
		tls    bool
		protos []string
		want   bool
	}{
		{name: "direct TLS", remote: "192.0.2.1:5000", tls: true, want: true},
		{name: "plain, no header", remote: "10.0.0.1:5000", want: false},
		{name: "trusted proxy says https", remote: "10.0.0.1:5000", protos: []string{"https"}, want: true},
		{name: "trusted proxy says HTTPS", remote: "10.0.0.1:5000", protos: []string{"HTTPS"}, want: true},
		{name: "trusted proxy says http", remote: "10.0.0.1:5000", protos: []string{"http"}, want: false},
		{name: "untrusted peer says https", remote: "192.0.2.1:5000", protos: []string{"https"}, want: false},
		{name: "client forged https, proxy appended http", remote: "10.0.0.1:5000", protos: []string{"https, http"}, want: false},
		{name: "last header counts", remote: "10.0.0.1:5000", protos: []string{"https", "http"}, want: false},
		{name: "bad remote address", remote: "nonsense", protos: []string{"https"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ui/", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for _, p := range tt.protos {
				r.Header.Add("X-Forwarded-Proto", p)
			}
			if got := ForwardedHTTPS(r, trusted); got != tt.want {
				t.Errorf("ForwardedHTTPS = %v, want %v", got, tt.want)
			}
		})
	}
}
