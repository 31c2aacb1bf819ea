// Package outbound checks the URL of an outside service that Sanad sends
// personal data or secrets to: the national registry (identifiers in the
// path) and the SMS/e-mail gateway (one-time codes in the body).
//
// One rule for both: an http(s) URL with a host, without credentials, a
// query or a fragment (any of which would reach the logs with an error
// that quotes the URL, and a secret belongs in a *_token_file), over
// https, or over http only to a loopback host. Errors never quote the URL
// given: they name its host at most.
package outbound

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrSecretInURL is the error for a URL with credentials, a query or a
// fragment.
var ErrSecretInURL = errors.New("carries credentials, a query or a fragment, which would reach the logs")

// Parse checks raw by the package's rule and returns it parsed.
func Parse(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("missing")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Opaque != "" || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, errors.New("is not an http(s) URL of the form scheme://host[/path]")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, ErrSecretInURL
	case u.Scheme == "http" && !IsLoopback(u.Hostname()):
		return nil, fmt.Errorf("http://%s: plain http is allowed only on a loopback host", u.Host)
	}
	return u, nil
}

// IsLoopback is whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
