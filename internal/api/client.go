package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientKey names the client of r for per-client limits. The client is
// the peer, unless the peer is one of trusted (the deployment's load
// balancers and proxies): then it is the nearest address in
// X-Forwarded-For, read from the right, that is not itself trusted, since
// entries to its left were written by the client and prove nothing. An
// IPv6 client is keyed by its /64, which one subscriber is usually given
// whole: keyed by the address, it could take a fresh one for each request.
func ClientKey(r *http.Request, trusted []netip.Prefix) string {
	client, _ := ClientKeys(r, trusted)
	return client
}

// ClientKeys is ClientKey, with, for an IPv6 client, its site: its /48,
// for a limit beside the client's, since a site is commonly given a /48,
// 65 536 /64s, each of which ClientKey counts as a client of its own.
// The site is "" for an IPv4 client, whose address ClientKey names.
func ClientKeys(r *http.Request, trusted []netip.Prefix) (client, site string) {
	a, ok := clientAddr(r, trusted)
	switch {
	case !ok:
		return r.RemoteAddr, ""
	case a.Is6():
		p64, _ := a.Prefix(64)
		p48, _ := a.Prefix(48)
		return p64.String(), p48.String()
	}
	return a.String(), ""
}

// clientAddr is the address of r's client (see ClientKey).
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	client, ok := hostAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if isTrusted(client, trusted) {
		hops := r.Header.Values("X-Forwarded-For")
	walk:
		for i := len(hops) - 1; i >= 0; i-- {
			parts := strings.Split(hops[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				a, ok := hostAddr(strings.TrimSpace(parts[j])) // some proxies write ip:port or [v6]:port
				if !ok {
					break walk // a malformed hop: the last good one stands
				}
				client = a
				if !isTrusted(client, trusted) {
					break walk
				}
			}
		}
	}
	return client, true
}

// hostAddr is the address of host, host:port, [v6] or [v6]:port.
func hostAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
