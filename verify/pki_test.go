package verify

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// testPKI is a root, an issuing CA and the HTTP services a relying party
// reaches (OCSP, CRLs, caIssuers), with switches to take each down.
type testPKI struct {
	t        *testing.T
	srv      *httptest.Server
	rootKey  *ecdsa.PrivateKey
	root     *x509.Certificate
	caKey    *ecdsa.PrivateKey
	ca       *x509.Certificate
	ocspKey  *ecdsa.PrivateKey
	ocspCert *x509.Certificate

	mu      sync.Mutex
	revoked map[string]revocation // serial (decimal) → revocation, of the issuing CA's certificates

	ocspDown, crlDown, aiaDown atomic.Bool
	// ocspOld answers with a thisUpdate three years old and no
	// nextUpdate; ocspUnknown with a signed "unknown"; ocspError, when
	// set, is the unsigned answer (unauthorized, tryLater, …) given
	// instead; crlExt adds an extension to the issuing CA's CRL.
	ocspOld, ocspUnknown       atomic.Bool
	ocspError                  atomic.Pointer[[]byte]
	crlExt                     atomic.Pointer[pkix.Extension]
	ocspRequests, deadRequests atomic.Int64
}

type revocation struct {
	at     time.Time
	reason int
}

var (
	oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}
	serialCounter      atomic.Int64
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestPKI(t testing.TB) *testPKI {
	tt, _ := t.(*testing.T)
	p := &testPKI{t: tt, revoked: map[string]revocation{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	now := time.Now()
	p.rootKey, p.caKey, p.ocspKey = newKey(t), newKey(t), newKey(t)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test National Root", Country: []string{"KZ"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(20 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	p.root = mustCert(t, rootTmpl, rootTmpl, p.rootKey.Public(), p.rootKey)
	p.ca = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing CA", Country: []string{"KZ"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		CRLDistributionPoints: []string{p.srv.URL + "/crl/root.crl"},
		IssuingCertificateURL: []string{p.srv.URL + "/ca/root.crt"},
	}, p.root, p.caKey.Public(), p.rootKey)
	p.ocspCert = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "Test OCSP Signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}, p.ca, p.ocspKey.Public(), p.caKey)
	return p
}

// leafOptions shape an end-entity certificate.
type leafOptions struct {
	notBefore, notAfter time.Time
	keyUsage            x509.KeyUsage
	ekus                []x509.ExtKeyUsage
	unknownEKUs         []asn1.ObjectIdentifier
	business            bool
	subject             *pkix.Name // instead of the citizen's or the business's
	caIssuers           string     // path on the PKI's server; default /ca/issuing.crt
	deadCAIssuers       int        // caIssuers URLs that answer 404, listed first
}

// citizenSign is the citizen-sign profile's shape.
func citizenSign() leafOptions {
	return leafOptions{keyUsage: x509.KeyUsageContentCommitment,
		ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, unknownEKUs: []asn1.ObjectIdentifier{oidDocumentSigning}}
}

// auditKey is the audit profile's shape (policies/profiles/audit.yaml):
// documentSigning with digitalSignature alone, in the name of the
// national PKI itself.
func auditKey() leafOptions {
	return leafOptions{keyUsage: x509.KeyUsageDigitalSignature, unknownEKUs: []asn1.ObjectIdentifier{oidDocumentSigning},
		subject: &pkix.Name{CommonName: "Sanad Audit Log Checkpoints", Organization: []string{"Sanad National PKI"}, Country: []string{"KZ"},
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidOrganizationIdentifier, Value: "NTRKZ-000000000001"}}}}
}

func (p *testPKI) leaf(t testing.TB, key crypto.Signer, o leafOptions) *x509.Certificate {
	t.Helper()
	now := time.Now()
	if o.notBefore.IsZero() {
		o.notBefore = now.Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = now.Add(365 * 24 * time.Hour)
	}
	subject := pkix.Name{CommonName: "Aigerim Sadykova", Country: []string{"KZ"}, SerialNumber: "IDCKZ-880312448217"}
	if o.business {
		subject = pkix.Name{CommonName: "Qazaq Grain LLP", Country: []string{"KZ"}, Organization: []string{"Qazaq Grain LLP"},
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidOrganizationIdentifier, Value: "NTRKZ-990140001234"}}}
	}
	if o.subject != nil {
		subject = *o.subject
	}
	return mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1000 + serialCounter.Add(1)), Subject: subject,
		NotBefore: o.notBefore, NotAfter: o.notAfter,
		KeyUsage: o.keyUsage, ExtKeyUsage: o.ekus, UnknownExtKeyUsage: o.unknownEKUs,
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(t, key.Public()),
		OCSPServer:            []string{p.srv.URL + "/ocsp"},
		IssuingCertificateURL: append(deadURLs(p.srv.URL, o.deadCAIssuers, serialCounter.Load()), p.srv.URL+cmp.Or(o.caIssuers, "/ca/issuing.crt")),
		CRLDistributionPoints: []string{p.srv.URL + "/crl/issuing.crl"},
	}, p.ca, key.Public(), p.caKey)
}

// deadURLs are n URLs of one certificate that answer 404.
func deadURLs(base string, n int, cert int64) []string {
	var urls []string
	for i := range n {
		urls = append(urls, fmt.Sprintf("%s/dead/%d-%d.crt", base, cert, i))
	}
	return urls
}

// keyID is an RFC 7093 §2 method 1 key identifier: the leftmost 160 bits
// of the SHA-256 of the public key.
func keyID(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}

func (p *testPKI) revoke(serial *big.Int, at time.Time, reason int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked[serial.String()] = revocation{at: at, reason: reason}
}

func (p *testPKI) config() Config {
	return Config{Roots: []*x509.Certificate{p.root}, RevocationCacheTTL: -1, AnyAIA: true}
}

// serve answers OCSP (GET and POST) for the issuing CA, the two CRLs and
// the two CA certificates.
func (p *testPKI) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/ocsp"):
		p.ocspRequests.Add(1)
		if p.ocspDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var req []byte
		var err error
		if r.Method == http.MethodPost {
			req, err = io.ReadAll(r.Body)
		} else {
			var s string
			if s, err = url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/ocsp/")); err == nil {
				req, err = base64.StdEncoding.DecodeString(s)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		if answer := p.ocspError.Load(); answer != nil {
			_, _ = w.Write(*answer)
			return
		}
		_, _ = w.Write(p.ocspResponse(req))
	case r.URL.Path == "/crl/issuing.crl", r.URL.Path == "/crl/root.crl":
		if p.crlDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(p.crl(r.URL.Path == "/crl/root.crl"))
	case r.URL.Path == "/ca/issuing.crt":
		if p.aiaDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(p.ca.Raw)
	case strings.HasPrefix(r.URL.Path, "/dead/"):
		p.deadRequests.Add(1)
		http.NotFound(w, r)
	case r.URL.Path == "/redirect/issuing.crt":
		http.Redirect(w, r, "/ca/issuing.crt", http.StatusFound)
	case r.URL.Path == "/ca/root.crt":
		_, _ = w.Write(p.root.Raw)
	default:
		http.NotFound(w, r)
	}
}

func (p *testPKI) ocspResponse(der []byte) []byte {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse
	}
	now := time.Now()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(4 * 24 * time.Hour), Certificate: p.ocspCert}
	if p.ocspOld.Load() {
		tmpl.ThisUpdate, tmpl.NextUpdate = now.AddDate(-3, 0, 0), time.Time{}
	}
	if p.ocspUnknown.Load() {
		tmpl.Status = ocsp.Unknown
	}
	p.mu.Lock()
	if rv, ok := p.revoked[req.SerialNumber.String()]; ok {
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rv.at, rv.reason
	}
	p.mu.Unlock()
	resp, err := ocsp.CreateResponse(p.ca, p.ocspCert, tmpl, p.ocspKey)
	if err != nil {
		p.t.Errorf("OCSP response: %v", err)
		return ocsp.InternalErrorErrorResponse
	}
	return resp
}

func (p *testPKI) crl(root bool) []byte {
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(7 * 24 * time.Hour)}
	issuer, key := p.ca, p.caKey
	if root {
		issuer, key = p.root, p.rootKey
	} else {
		if ext := p.crlExt.Load(); ext != nil {
			tmpl.ExtraExtensions = []pkix.Extension{*ext}
		}
		p.mu.Lock()
		for s, rv := range p.revoked {
			n, _ := new(big.Int).SetString(s, 10)
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: rv.at, ReasonCode: rv.reason})
		}
		p.mu.Unlock()
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		p.t.Errorf("CRL: %v", err)
	}
	return der
}
