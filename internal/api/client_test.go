package api

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestClientKey: a peer that is not a trusted proxy is the client whatever
// it forwards; behind trusted proxies the nearest untrusted hop of
// X-Forwarded-For is; IPv6 clients are keyed by their /64.
func TestClientKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	for _, tt := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "192.0.2.7:4000", nil, "192.0.2.7"},
		{"an untrusted peer's header is ignored", "192.0.2.7:4000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"behind a proxy", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged hop left of the real one", "10.1.2.3:4000", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"two proxies", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"two header lines", "10.1.2.3:4000", []string{"203.0.113.9", "198.51.100.1"}, "198.51.100.1"},
		{"a proxy without the header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"a malformed hop", "10.1.2.3:4000", []string{"198.51.100.1, garbage"}, "10.1.2.3"},
		{"IPv6 by /64", "[2001:db8:1:2:aaaa::1]:4000", nil, "2001:db8:1:2::/64"},
		{"IPv6 behind a proxy", "[2001:db8:ffff::5]:4000", []string{"2001:db8:7:8::9"}, "2001:db8:7:8::/64"},
		{"IPv4-mapped", "[::ffff:192.0.2.7]:4000", nil, "192.0.2.7"},
		{"a hop with its port", "10.1.2.3:4000", []string{"198.51.100.1:51234"}, "198.51.100.1"},
		{"an IPv6 hop in brackets", "10.1.2.3:4000", []string{"[2001:db8:7:8::9]:443"}, "2001:db8:7:8::/64"},
		{"an IPv6 hop in brackets, no port", "10.1.2.3:4000", []string{"[2001:db8:7:8::9]"}, "2001:db8:7:8::/64"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientKey(r, trusted); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
