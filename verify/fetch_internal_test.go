package verify

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFetchErrorsNameNoAddress: a status source or issuer that cannot be
// fetched is reported by the kind of failure, without the address,
// resolver or port the network error names: the report goes to whoever
// called the verify API, and a configured responder may be internal.
func TestFetchErrorsNameNoAddress(t *testing.T) {
	v := &Verifier{cfg: Config{HTTPClient: &http.Client{Timeout: 10 * time.Second}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	_, err = v.fetch(t.Context(), http.MethodGet, "http://"+addr+"/ocsp/MFQw", "", nil, anyURL)
	if err == nil || !strings.Contains(err.Error(), "could not be reached") || strings.Contains(err.Error(), port) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("a closed port: %v", err)
	}
	_, err = v.fetch(t.Context(), http.MethodGet, "http://responder.sanad-test.invalid/ocsp/MFQw", "", nil, anyURL)
	if err == nil || strings.Contains(err.Error(), "sanad-test.invalid") || strings.Contains(err.Error(), ":53") {
		t.Errorf("a name that does not resolve: %v", err)
	}
}
