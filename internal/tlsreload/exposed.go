package tlsreload

import (
	"net"
	"net/netip"
	"strings"
)

// Exposed reports whether a listener on addr ("host:port", as net.Listen
// takes it) accepts connections from other machines: an empty host
// (":5000"), an unspecified address (0.0.0.0, ::) or any non-loopback
// address or name. Only "localhost" and loopback addresses are private;
// other names are taken as exposed, since what they resolve to can change.
func Exposed(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	return !ip.Unmap().IsLoopback()
}
