package status_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/status"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

var person = profile.Verified{Country: "KZ", NationalID: "900101300123", GivenName: "Aigerim", FamilyName: "Nurlanovna"}

// deployment is a CA over a store with a responder in front of it, served
// over real HTTP.
type deployment struct {
	f         catest.Fixture
	db        *store.DB
	ca        *ca.CA
	responder *status.Responder
	url       string
}

func deploy(t *testing.T, f catest.Fixture, db *store.DB) *deployment {
	t.Helper()
	ctx := context.Background()
	log := audit.New(time.Now)
	authority := f.CA(t, db, log)
	// A CRL, so that /crl/issuing.crl has something to serve.
	builder, err := crl.New(db, log, f.Linter, crl.Config{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := builder.Build(ctx, crl.Issuer{ID: "issuing", Certificate: f.Issuer.Certificate, Signer: f.CAKey}); err != nil {
		t.Fatal(err)
	}
	r, err := status.New(ctx, db, status.Config{SyncInterval: 50 * time.Millisecond, Overlap: time.Second}, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(ctx); err == nil {
		t.Error("ready before the first sync")
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(ctx); err != nil {
		t.Errorf("not ready after the first sync: %v", err)
	}
	mux := http.NewServeMux()
	r.RegisterRoutes(mux)
	srv := httptest.NewServer(r.Handler(mux))
	t.Cleanup(srv.Close)
	return &deployment{f: f, db: db, ca: authority, responder: r, url: srv.URL}
}

func (d *deployment) issue(t *testing.T) *x509.Certificate {
	t.Helper()
	cert, err := d.ca.Issue(context.Background(), ca.Request{Profile: "citizen-auth", CSR: newCSRPEM(t), Verified: person, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// newCSRPEM is a CSR for a fresh P-256 key.
func newCSRPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// serve replaces the deployment's responder with one configured by cfg,
// synced once and served over HTTP.
func (d *deployment) serve(t *testing.T, cfg status.Config) *status.Responder {
	t.Helper()
	return d.serveStore(t, d.db, cfg)
}

// serveStore is serve over another view of the store.
func (d *deployment) serveStore(t *testing.T, st status.Store, cfg status.Config) *status.Responder {
	t.Helper()
	return d.serveAt(t, st, cfg, time.Now)
}

// serveAt is serveStore with the responder's clock.
func (d *deployment) serveAt(t *testing.T, st status.Store, cfg status.Config, now func() time.Time) *status.Responder {
	t.Helper()
	r, err := status.New(context.Background(), st, cfg, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	r.RegisterRoutes(mux)
	srv := httptest.NewServer(r.Handler(mux))
	t.Cleanup(srv.Close)
	d.url, d.responder = srv.URL, r
	return r
}

// run runs the responder's sync loop until the test ends.
func (d *deployment) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.responder.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// statusOf asks the responder about cert by GET.
func (d *deployment) statusOf(t *testing.T, cert *x509.Certificate) int {
	t.Helper()
	r, err := ocsp.ParseResponseForCert(d.ask(t, cert), cert, d.f.Issuer.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// ask asks the responder about cert (of the fixture's issuing CA; only
// its serial counts) by GET, and returns the answer's body.
func (d *deployment) ask(t *testing.T, cert *x509.Certificate) []byte {
	t.Helper()
	reqDER, err := ocsp.CreateRequest(cert, d.f.Issuer.Certificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(reqDER))
	return body
}

// revokeAndWait has the responder answer good for cert (which it then
// caches), revokes cert through the CA and returns how long the responder
// took to answer revoked. It waits up to testenv.WaitFor's minute, and a
// delay over 10 s, the bound a revocation must keep within (issue 7), is
// an error.
func (d *deployment) revokeAndWait(t *testing.T, cert *x509.Certificate) time.Duration {
	t.Helper()
	if s := d.statusOf(t, cert); s != ocsp.Good {
		t.Fatalf("status %d before the revocation", s)
	}
	if err := d.ca.Revoke(context.Background(), cert.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testenv.WaitFor(t, "the responder to answer revoked", func() bool { return d.statusOf(t, cert) == ocsp.Revoked })
	delay := time.Since(start)
	if delay > 10*time.Second {
		t.Errorf("the responder answered revoked %s after the revocation, more than 10 s", delay)
	}
	return delay
}

// openSSL asks the responder about serial with openssl ocsp, as a relying
// party would, and returns its output; the response must verify.
func (d *deployment) openSSL(t *testing.T, serial string, args ...string) string {
	t.Helper()
	openssl := testenv.Tool(t, "openssl")
	argv := append([]string{"ocsp", "-issuer", d.f.CAPEM, "-CAfile", d.f.RootPEM, "-verify_other", d.f.CAPEM,
		"-serial", serial, "-url", d.url + "/ocsp", "-timeout", "10"}, args...)
	out, _ := exec.Command(openssl, argv...).CombinedOutput()
	return string(out)
}

// judge has openssl read the responder's answer about cert: asked by
// openssl itself (POST, with args), or, for mode GET, fetched by GET and
// given to openssl ocsp -respin.
func (d *deployment) judge(t *testing.T, cert *x509.Certificate, args ...string) string {
	t.Helper()
	serial := "0x" + cert.SerialNumber.Text(16)
	if len(args) == 0 || args[0] != "GET" {
		return d.openSSL(t, serial, args...)
	}
	reqDER, err := ocsp.CreateRequest(cert, d.f.Issuer.Certificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(reqDER))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s", resp.Status)
	}
	path := filepath.Join(t.TempDir(), "resp.der")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(testenv.Tool(t, "openssl"), "ocsp", "-respin", path, "-issuer", d.f.CAPEM, "-CAfile", d.f.RootPEM,
		"-verify_other", d.f.CAPEM, "-serial", serial).CombinedOutput()
	return string(out)
}

// TestOpenSSLJudges: openssl ocsp, by GET and by POST, with and without a
// nonce, reads good, then revoked with its reason and time, and
// unauthorized for a serial the CA never issued; GnuTLS ocsptool agrees.
func TestOpenSSLJudges(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		d := deploy(t, f, db)
		cert := d.issue(t)
		serial := "0x" + cert.SerialNumber.Text(16)
		// openssl ocsp -url POSTs (OpenSSL 3.0 has no GET); the GET
		// answer is fetched here and judged by openssl ocsp -respin.
		for _, mode := range [][]string{{"-no_nonce"}, {}, {"GET"}} {
			out := d.judge(t, cert, mode...)
			if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, serial+": good") {
				t.Errorf("openssl ocsp %v, good certificate:\n%s", mode, out)
			}
		}
		if out := d.openSSL(t, "0x7f0102030405", "-no_nonce"); !strings.Contains(out, "unauthorized") {
			t.Errorf("never issued: %s", out)
		}
		// The pre-signed answers name certificates by SHA-1 CertIDs: one
		// asked by SHA-256 is told so, not sent an answer it cannot match.
		for _, nonce := range []string{"-no_nonce", "-nonce"} {
			out, _ := exec.Command(testenv.Tool(t, "openssl"), "ocsp", "-sha256", "-issuer", d.f.CAPEM, "-CAfile", d.f.RootPEM,
				"-serial", serial, "-url", d.url+"/ocsp", "-timeout", "10", nonce).CombinedOutput()
			if !strings.Contains(string(out), "Responder Error: unauthorized") {
				t.Errorf("openssl ocsp -sha256 %s, good certificate:\n%s", nonce, out)
			}
		}

		if err := d.ca.Revoke(context.Background(), cert.SerialNumber.Bytes(), 1, "test"); err != nil {
			t.Fatal(err)
		}
		// The good answer is cached; the sync replaces it.
		if err := d.responder.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, mode := range [][]string{{"-no_nonce"}, {}, {"GET"}} {
			out := d.judge(t, cert, mode...)
			if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, serial+": revoked") ||
				!strings.Contains(out, "Reason: keyCompromise") || !strings.Contains(out, "Revocation Time:") {
				t.Errorf("openssl ocsp %v, revoked certificate:\n%s", mode, out)
			}
		}

		// GnuTLS's client, against the same responder.
		ocsptool := testenv.Tool(t, "ocsptool")
		leaf := filepath.Join(t.TempDir(), "leaf.pem")
		if err := os.WriteFile(leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(ocsptool, "--ask="+d.url+"/ocsp", "--load-issuer", d.f.CAPEM, "--load-cert", leaf,
			"--load-trust", d.f.CAPEM, "--no-nonce").CombinedOutput()
		if !strings.Contains(string(out), "Certificate Status: revoked") || !strings.Contains(string(out), "Verifying OCSP Response: Success.") {
			t.Errorf("ocsptool --ask:\n%s", out)
		}
	})
}

// get fetches path from the deployment.
func (d *deployment) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// rawGET sends a GET request line exactly as given, as a client that
// does not check its own URLs would.
func (d *deployment) rawGET(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: responder\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestCaching: RFC 5019 §6 headers on OCSP GET answers, CRLs and CA
// certificates; If-None-Match gets 304; error answers are not cacheable.
func TestCaching(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	cert := d.issue(t)
	reqDER, err := ocsp.CreateRequest(cert, f.Issuer.Certificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Standard base64 with "/" and "+" raw, URL-safe, and percent-encoded:
	// one answer.
	std := base64.StdEncoding.EncodeToString(reqDER)
	paths := []string{"/ocsp/" + std, "/ocsp/" + base64.RawURLEncoding.EncodeToString(reqDER),
		"/ocsp/" + strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(std)}
	var etag string
	for _, p := range paths {
		resp, body := d.get(t, p)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("GET %s: %s %s", p, resp.Status, resp.Header.Get("Content-Type"))
		}
		parsed, err := ocsp.ParseResponseForCert(body, cert, f.Issuer.Certificate)
		if err != nil || parsed.Status != ocsp.Good {
			t.Fatalf("GET %s: %v", p, err)
		}
		cc := resp.Header.Get("Cache-Control")
		if !strings.HasPrefix(cc, "max-age=") || !strings.HasSuffix(cc, ", public, no-transform, must-revalidate") {
			t.Errorf("Cache-Control %q", cc)
		}
		if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err != nil || !lm.Equal(parsed.ThisUpdate) {
			t.Errorf("Last-Modified %q, thisUpdate %s", resp.Header.Get("Last-Modified"), parsed.ThisUpdate)
		}
		if ex, err := http.ParseTime(resp.Header.Get("Expires")); err != nil || !ex.Equal(parsed.NextUpdate) {
			t.Errorf("Expires %q, nextUpdate %s", resp.Header.Get("Expires"), parsed.NextUpdate)
		}
		etag = resp.Header.Get("ETag")
	}
	// A short encoding is kept parsed; one longer than a plain request's
	// (every character percent-encoded) is answered, not kept.
	kept := d.responder.GetCacheEntries()
	var long strings.Builder
	for _, c := range []byte(std) {
		fmt.Fprintf(&long, "%%%02X", c)
	}
	if resp, _ := d.get(t, "/ocsp/"+long.String()); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET of a request percent-encoded whole: %s", resp.Status)
	}
	if got := d.responder.GetCacheEntries(); kept == 0 || got != kept {
		t.Errorf("the GET cache holds %d, then %d after a long encoding; want at least one, and no more after", kept, got)
	}
	if resp, body := d.get(t, paths[0], "If-None-Match", etag); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %s, %d bytes", resp.Status, len(body))
	}
	if resp, _ := d.get(t, paths[0], "If-None-Match", `"other"`); resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another tag: %s", resp.Status)
	}
	// The absolute form a client sends through a proxy.
	if resp, body := d.rawGET(t, "http://responder.example/ocsp/"+std); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != etag {
		t.Errorf("absolute-form GET: %s, %d bytes", resp.Status, len(body))
	}

	for path, ct := range map[string]string{"/crl/issuing.crl": "application/pkix-crl", "/ca/issuing.crt": "application/pkix-cert", "/ca/root.crt": ""} {
		resp, body := d.get(t, path)
		if ct == "" { // the root is not in this store
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: %s", path, resp.Status)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct || resp.Header.Get("ETag") == "" ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
			t.Errorf("GET %s: %s %v", path, resp.Status, resp.Header)
		}
		if ct == "application/pkix-crl" {
			if _, err := x509.ParseRevocationList(body); err != nil {
				t.Errorf("the CRL: %v", err)
			}
			// A newer CRL reaches caches within the hour, whatever the
			// nextUpdate.
			var maxAge int
			if _, err := fmt.Sscanf(resp.Header.Get("Cache-Control"), "max-age=%d", &maxAge); err != nil || maxAge > 3600 || resp.Header.Get("Expires") != "" {
				t.Errorf("the CRL's Cache-Control: %q, Expires %q; want max-age at most 3600 and no Expires", resp.Header.Get("Cache-Control"), resp.Header.Get("Expires"))
			}
		} else if _, err := x509.ParseCertificate(body); err != nil {
			t.Errorf("the certificate: %v", err)
		}
		if resp, _ := d.get(t, path, "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match: %s", path, resp.Status)
		}
	}
	for _, path := range []string{"/crl/nope.crl", "/crl/issuing.pem", "/ca/issuing"} {
		if resp, _ := d.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
}

// TestMalformedOverHTTP: every malformed request, by POST and by GET, and
// every broken GET encoding, is answered malformedRequest (or a 4xx for
// what is not an OCSP request at all), never a 5xx; the responder keeps
// answering good requests between them.
func TestMalformedOverHTTP(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	cert := d.issue(t)
	goodReq, err := ocsp.CreateRequest(cert, f.Issuer.Certificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	stillServing := func(t *testing.T) {
		t.Helper()
		resp, body := d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(goodReq))
		if r, err := ocsp.ParseResponse(body, nil); resp.StatusCode != http.StatusOK || err != nil || r.Status != ocsp.Good {
			t.Fatalf("a good request after a bad one: %s %v", resp.Status, err)
		}
	}
	isMalformed := func(t *testing.T, what string, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte{0x30, 0x03, 0x0a, 0x01, 0x01}) ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %s, %x, Cache-Control %q; want malformedRequest, not cacheable", what, resp.Status, body, resp.Header.Get("Cache-Control"))
		}
	}
	post := func(t *testing.T, contentType string, body []byte) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(d.url+"/ocsp", contentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, out
	}
	for name, der := range status.MalformedRequests() {
		resp, body := post(t, "application/ocsp-request", der)
		isMalformed(t, "POST "+name, resp, body)
		if len(der) < 4096 {
			resp, body = d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(der))
			isMalformed(t, "GET "+name, resp, body)
		}
		stillServing(t)
	}
	std := base64.StdEncoding.EncodeToString(goodReq)
	for name, path := range map[string]string{
		"empty GET":              "/ocsp/",
		"bad base64":             "/ocsp/!!!" + std,
		"double-encoded URL":     "/ocsp/" + strings.NewReplacer("/", "%252F", "+", "%252B", "=", "%253D").Replace(std),
		"bad percent-encoding":   "/ocsp/%zz" + std,
		"mixed base64 alphabets": "/ocsp/" + strings.Replace(std, "/", "_", 1) + "+",
		"a path far too long":    "/ocsp/" + strings.Repeat("A", 8000),
	} {
		if !strings.ContainsAny(std, "/+") && name == "double-encoded URL" {
			continue
		}
		resp, body := d.rawGET(t, path)
		if name == "bad percent-encoding" {
			// net/http refuses a request line it cannot parse, before any
			// handler: a 4xx, as the issue allows.
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %s", name, resp.Status)
			}
		} else {
			isMalformed(t, name, resp, body)
		}
		stillServing(t)
	}
	if resp, _ := post(t, "text/plain", goodReq); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("POST as text/plain: %s", resp.Status)
	}
	// A parameter after the media type is no reason to refuse it.
	if resp, body := post(t, "application/ocsp-request; charset=binary", goodReq); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" || len(body) < 100 {
		t.Errorf("POST as application/ocsp-request with a parameter: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(body))
	}
	// A body too large is refused without reading it all.
	resp, body := post(t, "application/ocsp-request", make([]byte, 1<<20))
	isMalformed(t, "1 MB body", resp, body)
	stillServing(t)
}

// TestRevocationReachesTheResponder: with the sync loop running, a
// revocation through the CA replaces a cached good answer; the delay is
// logged (bounded by SyncInterval plus a sync's own time).
func TestRevocationReachesTheResponder(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		d := deploy(t, f, db)
		d.run(t)
		delay := d.revokeAndWait(t, d.issue(t))
		t.Logf("revoked answer served %s after the revocation (sync interval 50ms)", delay.Round(time.Millisecond))
	})
}

// TestPreload: with Preload the first sync fills the cache with the stored
// responses, up to CacheSize; without it the cache fills from requests. A
// page of rows that cannot be read is passed over, not read again for ever.
func TestPreload(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, raw := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	for range 5 {
		d.issue(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		cfg  status.Config
		want int
	}{
		{status.Config{}, 0},
		{status.Config{Preload: true}, 5},
		{status.Config{Preload: true, CacheSize: 3, PageSize: 2}, 3},
	} {
		r, err := status.New(ctx, db, tc.cfg, nil, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		// CacheSize 3 over 64 shards keeps one entry a shard: the 3 land
		// in 3 shards or evict each other; at most 3 either way.
		if got := r.CacheEntries(); got != tc.want && !(tc.cfg.CacheSize == 3 && got > 0 && got <= 3) {
			t.Errorf("%+v: %d entries, want %d", tc.cfg, got, tc.want)
		}
	}
	// The two oldest rows garbled: the first page of two holds nothing
	// readable.
	if _, err := raw.ExecContext(ctx, `UPDATE ocsp_responses SET der = X'3000' WHERE rowid IN
		(SELECT rowid FROM ocsp_responses ORDER BY updated_at, serial LIMIT 2)`); err != nil {
		t.Fatal(err)
	}
	r, err := status.New(ctx, db, status.Config{Preload: true, PageSize: 2}, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("the first sync, a page of garbled rows first: %v", err)
	}
	if got := r.CacheEntries(); got != 3 {
		t.Errorf("preloaded past two garbled rows: %d entries, want the 3 readable ones", got)
	}
}

// TestNotifiedOnPostgres: with polling an hour apart, a revocation still
// reaches the responder at once on PostgreSQL, told by LISTEN/NOTIFY; on
// SQLite, which cannot notify, the store says so and Run polls. (An hour,
// not a minute: revokeAndWait waits up to a minute, which a poll must not
// fill in for a lost notification.)
func TestNotifiedOnPostgres(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverPostgres)
	d := deploy(t, f, db)
	d.serve(t, status.Config{SyncInterval: time.Hour, Overlap: time.Minute})
	d.run(t)
	// Twice: the first revocation may also be read by the sync the
	// listener asks for once it listens; the second can only come by a
	// notification.
	for round := range 2 {
		delay := d.revokeAndWait(t, d.issue(t))
		t.Logf("round %d: revoked answer %s after the revocation, polls an hour apart", round, delay.Round(time.Millisecond))
	}

	sqlite, _ := storetest.Open(t, store.DriverSQLite)
	if err := sqlite.ListenOCSPChanges(context.Background(), func() {}); !errors.Is(err, store.ErrNoNotifications) {
		t.Errorf("SQLite ListenOCSPChanges = %v", err)
	}
}

// TestNonceSigned: on a node configured to sign nonces, openssl's nonce
// comes back in a freshly signed answer that openssl verifies (no "no
// nonce in response" warning), good and then revoked with its reason; a
// request without a nonce still gets the pre-signed answer.
func TestNonceSigned(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	ctx := context.Background()
	r := d.serve(t, status.Config{NonceSigner: func(presigned, nonce []byte) ([]byte, error) {
		return f.OCSP.WithNonce(f.Responder, presigned, nonce)
	}})

	cert := d.issue(t)
	serial := "0x" + cert.SerialNumber.Text(16)
	out := d.openSSL(t, serial)
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, serial+": good") || strings.Contains(strings.ToLower(out), "nonce") {
		t.Errorf("with a nonce:\n%s", out)
	}
	if out := d.openSSL(t, serial, "-no_nonce"); !strings.Contains(out, "Response verify OK") || !strings.Contains(out, serial+": good") {
		t.Errorf("without a nonce:\n%s", out)
	}
	if err := d.ca.Revoke(ctx, cert.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	out = d.openSSL(t, serial)
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, serial+": revoked") ||
		!strings.Contains(out, "Reason: keyCompromise") || strings.Contains(strings.ToLower(out), "nonce") {
		t.Errorf("revoked, with a nonce:\n%s", out)
	}
}

// TestNonceBudget: past Config.NoncePerSecond, a request with a nonce is
// answered with the pre-signed response, without signing: the first is
// signed (openssl finds its nonce), the next within the budget's second
// is not (openssl warns that the response has none, and still verifies).
func TestNonceBudget(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	var signed atomic.Int64
	d.serve(t, status.Config{NoncePerSecond: 0.001, NonceSigner: func(presigned, nonce []byte) ([]byte, error) {
		signed.Add(1)
		return f.OCSP.WithNonce(f.Responder, presigned, nonce)
	}})
	cert := d.issue(t)
	serial := "0x" + cert.SerialNumber.Text(16)
	if out := d.openSSL(t, serial); !strings.Contains(out, serial+": good") || strings.Contains(strings.ToLower(out), "nonce") {
		t.Errorf("the first request with a nonce:\n%s", out)
	}
	out := d.openSSL(t, serial)
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, serial+": good") || !strings.Contains(out, "WARNING: no nonce in response") {
		t.Errorf("past the budget:\n%s", out)
	}
	if n := signed.Load(); n != 1 {
		t.Errorf("%d responses signed for a nonce, want 1", n)
	}
}

// countingStore counts the first-sync reads of a store, and the reads of
// one response each.
type countingStore struct {
	*store.DB
	latest, responses atomic.Int32
}

func (s *countingStore) OCSPResponse(ctx context.Context, issuerID string, serial []byte) (store.OCSPResponse, error) {
	s.responses.Add(1)
	return s.DB.OCSPResponse(ctx, issuerID, serial)
}

func (s *countingStore) LatestOCSPUpdate(ctx context.Context) (time.Time, error) {
	s.latest.Add(1)
	return s.DB.LatestOCSPUpdate(ctx)
}

// TestRunGoesOnFromSync: the first sync (and its preload) happens once:
// Run continues from the Sync made before serving, and from its own.
func TestRunGoesOnFromSync(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	d.issue(t)
	st := &countingStore{DB: db}
	d.serveStore(t, st, status.Config{SyncInterval: 10 * time.Millisecond, Preload: true}) // syncs once
	d.run(t)
	d.revokeAndWait(t, d.issue(t)) // a revocation Run's later syncs must read
	if n := st.latest.Load(); n != 1 {
		t.Errorf("%d first syncs, want 1", n)
	}
}

// TestUnknownSerialsKeptApart: requests for serials never issued, many
// more than the cache holds, do not push a certificate's response out of
// it: they make room among themselves. And a serial first answered "not
// in the store" is answered with its response once the sync reads one.
func TestUnknownSerialsKeptApart(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, raw := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	cert := d.issue(t)
	st := &countingStore{DB: db}
	// One response a shard: without the split, each unknown serial
	// pushed out whatever its shard held.
	d.serveStore(t, st, status.Config{CacheSize: 64, NegativeTTL: time.Hour})
	if got := d.statusOf(t, cert); got != ocsp.Good {
		t.Fatalf("status %d", got)
	}
	read := st.responses.Load()
	for range 1000 {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			t.Fatal(err)
		}
		reqDER, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, f.Issuer.Certificate, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, body := d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(reqDER)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte{0x30, 0x03, 0x0a, 0x01, 0x06}) {
			t.Fatalf("an unknown serial: %s % x; want unauthorized", resp.Status, body)
		}
	}
	if n := st.responses.Load() - read; n != 1000 {
		t.Fatalf("%d store reads for 1000 unknown serials", n)
	}
	read = st.responses.Load()
	if got := d.statusOf(t, cert); got != ocsp.Good || st.responses.Load() != read {
		t.Errorf("the certificate after the unknown serials: status %d, %d store reads; want good from the cache", got, st.responses.Load()-read)
	}

	// A serial asked before its response is stored is "not in the store",
	// then good as soon as a sync reads the response, within NegativeTTL
	// (an hour here): its response is stored aside, asked for, and put
	// back newer.
	later := d.issue(t)
	var row struct {
		issuer           string
		der              []byte
		thisUpd, nextUpd int64
	}
	serial := later.SerialNumber.Bytes()
	if err := raw.QueryRow(`SELECT issuer_id, der, this_update, next_update FROM ocsp_responses WHERE serial = ?`, serial).
		Scan(&row.issuer, &row.der, &row.thisUpd, &row.nextUpd); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM ocsp_responses WHERE serial = ?`, serial); err != nil {
		t.Fatal(err)
	}
	reqDER, err := ocsp.CreateRequest(later, f.Issuer.Certificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(reqDER)); resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte{0x30, 0x03, 0x0a, 0x01, 0x06}) {
		t.Fatalf("a serial not stored yet: %s % x; want unauthorized", resp.Status, body)
	}
	if _, err := raw.Exec(`INSERT INTO ocsp_responses (issuer_id, serial, der, this_update, next_update, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		row.issuer, serial, row.der, row.thisUpd, row.nextUpd, time.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
	if err := d.responder.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	read = st.responses.Load()
	if got := d.statusOf(t, later); got != ocsp.Good || st.responses.Load() != read {
		t.Errorf("after the sync read its response: status %d, %d store reads; want good from the cache", got, st.responses.Load()-read)
	}
}

// TestIssuerAddedWhileServing: an issuing CA recorded after the responder
// started (a rollover) is answered for from the next sync, without a
// restart: before it, its certificates are unauthorized and its
// certificate is not served; after it, both are, and the first CA still is.
func TestIssuerAddedWhileServing(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := catest.New(t, now)
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		d := deploy(t, f, db)
		first := d.issue(t)

		next := catest.New(t, now)
		deps := next.Deps(db, audit.New(time.Now))
		deps.Issuer.ID, deps.Responder.IssuerID = "issuing-2", "issuing-2"
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.PutIssuer(ctx, store.Issuer{ID: "issuing-2", Name: "Test Issuing CA 2", Role: "issuing",
				CertificateDER: next.Issuer.Certificate.Raw, KeyLabel: "issuing", CreatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
		authority2, err := ca.New(deps)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := authority2.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSRPEM(t), Verified: person, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ask := func() *ocsp.Response {
			t.Helper()
			reqDER, err := ocsp.CreateRequest(cert, next.Issuer.Certificate, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, body := d.get(t, "/ocsp/"+base64.StdEncoding.EncodeToString(reqDER))
			r, err := ocsp.ParseResponseForCert(body, cert, next.Issuer.Certificate)
			if err != nil {
				return nil // unauthorized: no signed response
			}
			return r
		}
		if r := ask(); r != nil {
			t.Fatalf("before a sync, the new issuing CA's certificate got status %d", r.Status)
		}
		if resp, _ := d.get(t, "/ca/issuing-2.crt"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("before a sync, /ca/issuing-2.crt: %d", resp.StatusCode)
		}
		if err := d.responder.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if r := ask(); r == nil || r.Status != ocsp.Good {
			t.Errorf("after a sync, the new issuing CA's certificate: %+v", r)
		}
		if resp, body := d.get(t, "/ca/issuing-2.crt"); resp.StatusCode != http.StatusOK || !bytes.Equal(body, next.Issuer.Certificate.Raw) {
			t.Errorf("after a sync, /ca/issuing-2.crt: %d", resp.StatusCode)
		}
		if s := d.statusOf(t, first); s != ocsp.Good {
			t.Errorf("the first issuing CA's certificate: status %d", s)
		}
	})
}

// failingStore fails the sync's reads while fail is set.
type failingStore struct {
	*store.DB
	fail atomic.Bool
}

func (s *failingStore) OCSPResponsesAfter(ctx context.Context, from store.OCSPCursor, limit int) ([]store.OCSPResponse, error) {
	if s.fail.Load() {
		return nil, errors.New("the store is unreachable (test)")
	}
	return s.DB.OCSPResponsesAfter(ctx, from, limit)
}

// TestLastSyncMetric: sanad_ocsp_last_sync_timestamp_seconds is when the
// last sync that succeeded ended, and stays there while syncs fail; the
// node stays ready on what it holds.
func TestLastSyncMetric(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	d.issue(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { return now }
	st := &failingStore{DB: db}
	r, err := status.New(ctx, st, status.Config{}, nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		t.Fatal(err)
	}
	lastSync := func() float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range families {
			if mf.GetName() == "sanad_ocsp_last_sync_timestamp_seconds" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no sanad_ocsp_last_sync_timestamp_seconds")
		return 0
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first := now
	if got := lastSync(); got != float64(first.Unix()) {
		t.Errorf("after a sync: %v; want %d", got, first.Unix())
	}
	now = now.Add(time.Hour)
	st.fail.Store(true)
	if err := r.Sync(ctx); err == nil {
		t.Fatal("a sync with the store failing succeeded")
	}
	if got := lastSync(); got != float64(first.Unix()) {
		t.Errorf("after a failed sync: %v; want the last good one's %d", got, first.Unix())
	}
	if err := r.Ready(ctx); err != nil {
		t.Errorf("Ready after a failed sync: %v; want ready on what it holds", err)
	}
	st.fail.Store(false)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lastSync(); got != float64(now.Unix()) {
		t.Errorf("after syncing again: %v; want %d", got, now.Unix())
	}
}

// TestResyncAfterAClockAhead: a CA node whose clock runs ahead stamps its
// rows ahead and moves the responder's cursor with them; a revocation an
// accurate node stamps just after falls behind Overlap, and the syncs that
// follow do not read it. The resync does: every ResyncInterval it reads
// ResyncWindow back from the responder's own clock.
func TestResyncAfterAClockAhead(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, raw := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	ahead, victim := d.issue(t), d.issue(t)
	ctx := t.Context()
	now := time.Now().UTC()
	r := d.serveAt(t, db, status.Config{Overlap: 10 * time.Second, ResyncInterval: 5 * time.Minute, ResyncWindow: time.Hour},
		func() time.Time { return now })
	if s := d.statusOf(t, victim); s != ocsp.Good {
		t.Fatalf("status %d before the revocation", s)
	}
	// The fast node's row, stamped half an hour ahead, read by a sync.
	if _, err := raw.ExecContext(ctx, `UPDATE ocsp_responses SET updated_at = ? WHERE serial = ?`,
		now.Add(30*time.Minute).UnixMicro(), ahead.SerialNumber.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.ca.Revoke(ctx, victim.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s := d.statusOf(t, victim); s != ocsp.Good {
		t.Fatalf("status %d a sync after the revocation; the test wants the cursor past it (good, from the cache)", s)
	}
	now = now.Add(5 * time.Minute)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if s := d.statusOf(t, victim); s != ocsp.Revoked {
		t.Errorf("status %d after the resync; want revoked", s)
	}
}

// TestStaleAnswerAskedOnce: an answer past its nextUpdate (the CA's
// publisher stopped re-signing) is answered tryLater, and the store is
// asked for a newer one once a NegativeTTL, not at every request.
func TestStaleAnswerAskedOnce(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	cert := d.issue(t)
	st := &countingStore{DB: db}
	now := time.Now().UTC()
	d.serveAt(t, st, status.Config{NegativeTTL: 5 * time.Second}, func() time.Time { return now })
	ask := func() []byte { return d.ask(t, cert) }
	if _, err := ocsp.ParseResponseForCert(ask(), cert, f.Issuer.Certificate); err != nil {
		t.Fatalf("the answer while fresh: %v", err)
	}
	now = now.AddDate(0, 0, 5) // past the answer's nextUpdate (4 days)
	before := st.responses.Load()
	for i := range 3 {
		if body := ask(); !bytes.Equal(body, []byte{0x30, 0x03, 0x0a, 0x01, 0x03}) {
			t.Fatalf("request %d past nextUpdate: %x; want tryLater", i+1, body)
		}
	}
	if n := st.responses.Load() - before; n != 1 {
		t.Errorf("store reads for three requests past nextUpdate within NegativeTTL: %d; want 1", n)
	}
	now = now.Add(6 * time.Second)
	ask()
	if n := st.responses.Load() - before; n != 2 {
		t.Errorf("store reads once NegativeTTL passed: %d; want 2", n)
	}
}

// blockingStore holds every read of one response until release closes
// (or ten seconds pass, so that a test that fails does not hang).
type blockingStore struct {
	*store.DB
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) OCSPResponse(ctx context.Context, issuerID string, serial []byte) (store.OCSPResponse, error) {
	s.entered <- struct{}{}
	select {
	case <-s.release:
	case <-time.After(10 * time.Second):
	}
	return s.DB.OCSPResponse(ctx, issuerID, serial)
}

// TestStoreReadsBounded: at most MaxStoreReads requests read the store
// at once on a miss; one more waits MissWait, then is answered tryLater,
// so that requests for random serials cannot take every database
// connection from the sync. Once a place is free, misses read again.
func TestStoreReadsBounded(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	st := &blockingStore{DB: db, entered: make(chan struct{}, 4), release: make(chan struct{})}
	d.serveStore(t, st, status.Config{MaxStoreReads: 1, MissWait: 50 * time.Millisecond})
	ask := func(serial int64) []byte { return d.ask(t, &x509.Certificate{SerialNumber: big.NewInt(serial)}) }
	unauthorized, tryLater := []byte{0x30, 0x03, 0x0a, 0x01, 0x06}, []byte{0x30, 0x03, 0x0a, 0x01, 0x03}
	first := make(chan []byte, 1)
	go func() { first <- ask(0x7001) }()
	<-st.entered // the first miss holds the only place
	if body := ask(0x7002); !bytes.Equal(body, tryLater) {
		t.Errorf("a second miss while the first reads the store: %x; want tryLater", body)
	}
	close(st.release)
	if body := <-first; !bytes.Equal(body, unauthorized) {
		t.Errorf("the first miss: %x; want unauthorized (not in the store)", body)
	}
	if body := ask(0x7003); !bytes.Equal(body, unauthorized) {
		t.Errorf("a miss once the place is free: %x; want unauthorized", body)
	}
}

// laggingMiss is a store whose reads of one serial's answer (a miss) come
// from a replica that has not applied what the sync's replica has: stale.
type laggingMiss struct {
	*store.DB
	stale atomic.Pointer[store.OCSPResponse]
}

func (s *laggingMiss) OCSPResponse(ctx context.Context, issuerID string, serial []byte) (store.OCSPResponse, error) {
	if r := s.stale.Load(); r != nil && bytes.Equal(r.Serial, serial) {
		return *r, nil
	}
	return s.DB.OCSPResponse(ctx, issuerID, serial)
}

// TestRevocationNotLostToALaggingMiss: a sync reads a revocation of a
// serial no request has asked about yet; a request then misses the cache
// and reads a replica that has not applied the revocation. The answer is
// the revocation, now and after: the good one the replica still holds
// never replaces it (before, it was cached and served until the resync,
// five minutes, however many syncs passed).
func TestRevocationNotLostToALaggingMiss(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := deploy(t, f, db)
	victim := d.issue(t)
	good, err := db.OCSPResponse(t.Context(), f.Issuer.ID, victim.SerialNumber.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	st := &laggingMiss{DB: db}
	r := d.serveStore(t, st, status.Config{})
	if err := d.ca.Revoke(t.Context(), victim.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	st.stale.Store(&good)
	for i := range 2 {
		if s := d.statusOf(t, victim); s != ocsp.Revoked {
			t.Errorf("ask %d, the miss reading a replica behind: status %d, want revoked", i+1, s)
		}
	}
}
