package verify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
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

// TestReportNamesNoConfiguredResponder: a report names the configured
// OCSP responder as such, not by its URL (it may be an internal host),
// whether it answered or not, and says of a failed TLS handshake only
// that it failed: its text names the server certificate's host names.
func TestReportNamesNoConfiguredResponder(t *testing.T) {
	p := newTestPKI(t)
	key := newKey(t)
	leaf := p.leaf(t, key, citizenSign())
	sig := buildCMS(t, document, true, []*x509.Certificate{leaf, p.ca}, cmsSigner{cert: leaf, key: key, signingTime: time.Now()})
	// ocsp.sanad-internal.test is the status service over http and a TLS
	// server with a certificate for example.com over https.
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	trusted := x509.NewCertPool()
	trusted.AddCert(tlsSrv.Certificate())
	var dialer net.Dialer
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: trusted},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			switch addr {
			case "ocsp.sanad-internal.test:80":
				addr = p.srv.Listener.Addr().String()
			case "ocsp.sanad-internal.test:443":
				addr = tlsSrv.Listener.Addr().String()
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	for _, c := range []struct {
		name, responder string
		crlDown         bool
		ind             Indication
		source          string
	}{
		{"answers", "http://ocsp.sanad-internal.test/ocsp", false, TotalPassed, "ocsp"},
		{"TLS handshake fails, CRL answers", "https://ocsp.sanad-internal.test/ocsp", false, TotalPassed, "crl"},
		{"TLS handshake fails, CRL down", "https://ocsp.sanad-internal.test/ocsp", true, Indeterminate, ""},
	} {
		p.crlDown.Store(c.crlDown)
		cfg := p.config()
		cfg.OCSPResponder, cfg.HTTPClient = c.responder, client
		v, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(t.Context(), sig, document)
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		if res.Indication != c.ind || res.Reports[0].Chain[0].StatusSource != c.source || !strings.Contains(text, "the configured OCSP responder") {
			t.Errorf("%s: %s", c.name, text)
		}
		for _, secret := range []string{"sanad-internal", "example.com", "certificate is valid for", "tls:", tlsSrv.Listener.Addr().String()} {
			if strings.Contains(text, secret) {
				t.Errorf("%s: the report says %q: %s", c.name, secret, text)
			}
		}
		if strings.Contains(c.responder, "https") && !strings.Contains(text, "TLS handshake failed") {
			t.Errorf("%s: no TLS failure in %s", c.name, text)
		}
	}
}

// TestFetchErrorsQuoteNothing: a redirect refused does not name where it
// led, and an answer that is not HTTP is not quoted: both may come from an
// internal host (a configured responder), and their text reached the
// report as it was.
func TestFetchErrorsQuoteNothing(t *testing.T) {
	v := &Verifier{cfg: Config{HTTPClient: &http.Client{Timeout: 10 * time.Second}}}
	redirect := httptest.NewServer(http.RedirectHandler("http://secret.sanad-internal.test/admin", http.StatusFound))
	t.Cleanup(redirect.Close)
	onlyHere := func(u string) bool { return strings.HasPrefix(u, redirect.URL) }
	_, err := v.fetch(t.Context(), http.MethodGet, redirect.URL+"/ocsp", "", nil, onlyHere)
	if err == nil || !strings.Contains(err.Error(), "redirect to") || strings.Contains(err.Error(), "sanad-internal") {
		t.Errorf("a redirect refused: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, "SSH-2.0-internal-banner secret.sanad-internal.test\r\n\r\n")
			}()
		}
	}()
	_, err = v.fetch(t.Context(), http.MethodGet, "http://"+ln.Addr().String()+"/ocsp", "", nil, anyURL)
	if err == nil || strings.Contains(err.Error(), "banner") || strings.Contains(err.Error(), "sanad-internal") {
		t.Errorf("an answer that is not HTTP: %v", err)
	}
}

// TestFetchedIssuerErrorQuotesNothing: a caIssuers answer that does not
// parse is not quoted: crypto/x509 quotes the name it cannot parse, here
// a URI that names an internal host.
func TestFetchedIssuerErrorQuotesNothing(t *testing.T) {
	p := newTestPKI(t)
	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "bad URI"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: sanURI(t, "http://secret.sanad-internal.test/%zz")}}},
		&x509.Certificate{Subject: pkix.Name{CommonName: "bad URI"}}, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err == nil || !strings.Contains(err.Error(), "sanad-internal") {
		t.Fatalf("the test certificate: crypto/x509 says %v; want it to quote the URI", err)
	}
	// As PEM: crypto/x509's error is then the one returned.
	body := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	t.Cleanup(srv.Close)
	_, err = v.fetchIssuer(t.Context(), srv.URL+"/issuing.crt")
	if err == nil || strings.Contains(err.Error(), "sanad-internal") {
		t.Errorf("an issuer that does not parse: %v", err)
	}
}

// sanURI is a subjectAltName extension value of one URI, as given.
func sanURI(t *testing.T, uri string) []byte {
	t.Helper()
	v, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
