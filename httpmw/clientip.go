package httpmw

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseProxies parses CIDRs ("10.0.0.0/8") or single addresses
// ("192.0.2.7", taken as /32 or /128) into trusted-proxy prefixes, and
// reports every entry it cannot parse.
func ParseProxies(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var bad []string
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		bad = append(bad, fmt.Sprintf("%q", e))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("not a CIDR or an IP address: %s", strings.Join(bad, ", "))
	}
	return out, nil
}

// clientIP is the address of the client: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is read from the right (the
// entry the nearest proxy appended) past every trusted hop; the first
// untrusted address is the client. A client can put anything at the left
// of the header, so nothing left of that address is believed.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := forwardedHops(r.Header.Values("X-Forwarded-For"))
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			break // garbage: stop at the last address a trusted hop vouched for
		}
		client = a.Unmap()
		if !isTrusted(client, trusted) {
			break
		}
	}
	return client.String()
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedHops splits every X-Forwarded-For header into its addresses,
// in order. IPv6 entries may come bracketed, with or without a port.
func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			h = strings.TrimSpace(h)
			if host, _, err := net.SplitHostPort(h); err == nil {
				h = host
			}
			hops = append(hops, strings.Trim(h, "[]"))
		}
	}
	return hops
}

// ForwardedHTTPS reports whether the client reached us over HTTPS: this
// connection is TLS, or a trusted proxy that terminated TLS says so in
// X-Forwarded-Proto (its last value, the one that proxy set). A cookie
// that must stay off plain HTTP (Secure) is decided by this.
func ForwardedHTTPS(r *http.Request, trusted []netip.Prefix) bool {
	if r.TLS != nil {
		return true
	}
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return false
	}
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return false
	}
	protos := strings.Split(values[len(values)-1], ",")
	return strings.EqualFold(strings.TrimSpace(protos[len(protos)-1]), "https")
}
