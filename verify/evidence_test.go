package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspRequestOf is the DER OCSP request of r, GET or POST.
func ocspRequestOf(r *http.Request) []byte {
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		return b
	}
	path := r.URL.EscapedPath()
	s, _ := url.PathUnescape(path[strings.LastIndex(path, "/")+1:])
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

// responder serves OCSP answers that answer makes for each request.
func responder(t *testing.T, answer func(req *ocsp.Request) []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := ocsp.ParseRequest(ocspRequestOf(r))
		if err != nil {
			_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
			return
		}
		_, _ = w.Write(answer(req))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// signed verifies a signature by a fresh citizen-sign certificate of p,
// made now, with cfg.
func (p *testPKI) signed(t *testing.T, cfg Config) *Result {
	t.Helper()
	key := newKey(t)
	leaf := p.leaf(t, key, citizenSign())
	return verifiedNow(t, cfg, leaf, key, p.ca)
}

// verifiedNow is what a Verifier with cfg says of a signature leaf's key
// makes now, carrying leaf and ca.
func verifiedNow(t *testing.T, cfg Config, leaf *x509.Certificate, key crypto.Signer, ca *x509.Certificate) *Result {
	t.Helper()
	sig := buildCMS(t, document, true, []*x509.Certificate{leaf, ca}, cmsSigner{cert: leaf, key: key, signingTime: time.Now(), ess: leaf})
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(context.Background(), sig, document)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// citizenSignOf is a citizen-sign certificate for key, with serial,
// valid from notBefore for a day, that ca signs with caKey, with shape's
// changes (URLs).
func citizenSignOf(t *testing.T, key crypto.Signer, serial *big.Int, notBefore time.Time, ca *x509.Certificate, caKey crypto.Signer, shape func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	o := citizenSign()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "X", SerialNumber: "IDCKZ-1"},
		NotBefore: notBefore, NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: o.keyUsage, ExtKeyUsage: o.ekus, UnknownExtKeyUsage: o.unknownEKUs,
		BasicConstraintsValid: true}
	if shape != nil {
		shape(tmpl)
	}
	return mustCert(t, tmpl, ca, key.Public(), caKey)
}

// TestStaleRevocationStands: an authentic OCSP "revoked" that fails only
// freshness (a cache's old copy, or a thisUpdate ahead of this clock) is
// still a revocation: a CRL published before it, which does not list it,
// does not make the signature pass. A stale "good" is no answer, as before.
func TestStaleRevocationStands(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	for _, c := range []struct {
		name       string
		status     int
		this, next time.Time
		want       Indication
	}{
		{"revoked, stale", ocsp.Revoked, now.Add(-2 * time.Hour), now.Add(-time.Hour), TotalFailed},
		{"revoked, thisUpdate ahead", ocsp.Revoked, now.Add(10 * time.Minute), now.Add(time.Hour), TotalFailed},
		{"good, stale: the CRL answers", ocsp.Good, now.Add(-2 * time.Hour), now.Add(-time.Hour), TotalPassed},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := p.config()
			cfg.OCSPResponder = responder(t, func(req *ocsp.Request) []byte {
				der, err := ocsp.CreateResponse(p.ca, p.ocspCert, ocsp.Response{Status: c.status, RevokedAt: now.Add(-3 * time.Hour), RevocationReason: ocsp.KeyCompromise,
					SerialNumber: req.SerialNumber, ThisUpdate: c.this, NextUpdate: c.next, Certificate: p.ocspCert}, p.ocspKey)
				if err != nil {
					t.Error(err)
				}
				return der
			})
			res := p.signed(t, cfg)
			if res.Indication != c.want || (c.want == TotalFailed && res.SubIndication != Revoked) {
				var b bytes.Buffer
				_ = res.WriteText(&b)
				t.Errorf("%s/%s, want %s\n%s", res.Indication, res.SubIndication, c.want, b.String())
			}
		})
	}
}

// TestStaleCRLRevocationStands: so does a revocation on a CRL past its
// nextUpdate, with no OCSP answer; a stale CRL that does not list the
// certificate is no answer.
func TestStaleCRLRevocationStands(t *testing.T) {
	p := newTestPKI(t)
	p.ocspDown.Store(true)
	now := time.Now()
	for _, c := range []struct {
		name   string
		listed bool
		want   Indication
	}{
		{"listed", true, TotalFailed},
		{"not listed", false, Indeterminate},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := newKey(t)
			serial := big.NewInt(6000 + serialCounter.Add(1))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-24 * time.Hour)}
				if c.listed {
					rl.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: serial, RevocationTime: now.Add(-72 * time.Hour), ReasonCode: ocsp.KeyCompromise}}
				}
				der, err := x509.CreateRevocationList(rand.Reader, rl, p.ca, p.caKey)
				if err != nil {
					t.Error(err)
				}
				_, _ = w.Write(der)
			}))
			defer srv.Close()
			leaf := citizenSignOf(t, key, serial, now.Add(-96*time.Hour), p.ca, p.caKey, func(c *x509.Certificate) {
				c.OCSPServer, c.CRLDistributionPoints = []string{p.srv.URL + "/ocsp"}, []string{srv.URL + "/issuing.crl"}
			})
			if res := verifiedNow(t, p.config(), leaf, key, p.ca); res.Indication != c.want {
				t.Errorf("%s/%s, want %s", res.Indication, res.SubIndication, c.want)
			}
		})
	}
}

// TestConfiguredResponderForWhatNamesOne: the configured OCSP responder
// stands in for the one a certificate names, and is not asked of the
// issuing CA's certificate, which names none: Sanad's responder answers
// unauthorized for the root's certificates, which the root's CRL covers.
func TestConfiguredResponderForWhatNamesOne(t *testing.T) {
	p := newTestPKI(t)
	rootCertID, err := ocsp.CreateRequest(p.ca, p.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	ofRoot, err := ocsp.ParseRequest(rootCertID)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.config()
	cfg.OCSPResponder = responder(t, func(req *ocsp.Request) []byte {
		if bytes.Equal(req.IssuerKeyHash, ofRoot.IssuerKeyHash) {
			return ocsp.UnauthorizedErrorResponse
		}
		der, err := req.Marshal()
		if err != nil {
			t.Error(err)
		}
		return p.ocspResponse(der)
	})
	if res := p.signed(t, cfg); res.Indication != TotalPassed || res.Reports[0].Chain[0].StatusSource != "ocsp" {
		var b bytes.Buffer
		_ = res.WriteText(&b)
		t.Errorf("%s/%s, want TOTAL_PASSED with the signer's status by OCSP\n%s", res.Indication, res.SubIndication, b.String())
	}
}

// TestWeakEvidenceRefused: the algorithm and key rules the signer is held
// to hold for the whole path and for the revocation evidence: a CA with an
// RSA-1024 key, an OCSP answer signed with SHA-1 by a responder with an
// RSA-1024 key, and a CRL signed with SHA-1 are each refused.
func TestWeakEvidenceRefused(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a CA with an RSA-1024 key", func(t *testing.T) {
		ca := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "Weak CA", Country: []string{"KZ"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, CRLDistributionPoints: []string{p.srv.URL + "/crl/root.crl"}}, p.root, &weak.PublicKey, p.rootKey)
		key := newKey(t)
		leaf := citizenSignOf(t, key, big.NewInt(5000), now.Add(-time.Hour), ca, weak, nil)
		if res := verifiedNow(t, p.config(), leaf, key, ca); res.Indication != Indeterminate || res.SubIndication != CryptoConstraintsFailure {
			t.Errorf("%s/%s, want INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE", res.Indication, res.SubIndication)
		}
	})

	strong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  *rsa.PrivateKey
		alg  x509.SignatureAlgorithm
	}{
		{"an OCSP answer signed with SHA-1", strong, x509.SHA1WithRSA},
		{"an OCSP responder with an RSA-1024 key", weak, x509.SHA256WithRSA},
	} {
		t.Run(c.name, func(t *testing.T) {
			signer := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "Weak OCSP"},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, p.ca, &c.key.PublicKey, p.caKey)
			cfg := p.config()
			cfg.OCSPResponder = responder(t, func(req *ocsp.Request) []byte {
				der, err := ocsp.CreateResponse(p.ca, signer, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
					ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: signer, SignatureAlgorithm: c.alg}, c.key)
				if err != nil {
					t.Error(err)
				}
				return der
			})
			res := p.signed(t, cfg)
			if src := res.Reports[0].Chain[0].StatusSource; src != "crl" {
				t.Errorf("the signer's status from %q, want the CRL (the OCSP answer refused)", src)
			}
		})
	}

	t.Run("a CRL signed with SHA-1", func(t *testing.T) {
		p.ocspDown.Store(true)
		defer p.ocspDown.Store(false)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{SignatureAlgorithm: x509.ECDSAWithSHA1, Number: big.NewInt(1),
				ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, p.ca, p.caKey)
			if err != nil {
				t.Error(err)
			}
			_, _ = w.Write(der)
		}))
		defer srv.Close()
		key := newKey(t)
		leaf := citizenSignOf(t, key, big.NewInt(5001), now.Add(-time.Hour), p.ca, p.caKey, func(c *x509.Certificate) {
			c.CRLDistributionPoints = []string{srv.URL + "/issuing.crl"}
		})
		res := verifiedNow(t, p.config(), leaf, key, p.ca)
		if res.Indication == TotalPassed {
			t.Errorf("TOTAL_PASSED on a SHA-1 CRL alone")
		}
		var b bytes.Buffer
		_ = res.WriteText(&b)
		if !strings.Contains(b.String(), "an algorithm no longer accepted") {
			t.Errorf("the report does not say why the CRL was refused:\n%s", b.String())
		}
	})
}

// TestOCSPAnswerAboutAnotherIssuer: an OCSP answer is taken only if its
// CertID names this certificate's issuer, by the hashes of its name and
// key (in any hash the verifier takes), not by serial alone: the issuer's
// own responder answering "good" about another CA's certificate of the
// same serial is no answer (the CRL is asked instead).
func TestOCSPAnswerAboutAnotherIssuer(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	otherKey := newKey(t)
	other := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(78), Subject: pkix.Name{CommonName: "Another CA", Country: []string{"KZ"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, p.root, otherKey.Public(), p.rootKey)
	// sameName has the issuing CA's name and another key.
	sameName := *p.ca
	sameName.PublicKey, sameName.RawSubjectPublicKeyInfo = otherKey.Public(), other.RawSubjectPublicKeyInfo
	for _, c := range []struct {
		name   string
		issuer *x509.Certificate
		hash   crypto.Hash
		want   string
	}{
		{"another CA's", other, crypto.SHA1, "crl"},
		{"the issuing CA's name, another key", &sameName, crypto.SHA1, "crl"},
		{"the issuing CA's, hashed with SHA-256", p.ca, crypto.SHA256, "ocsp"},
		{"the issuing CA's, hashed with SHA-1", p.ca, crypto.SHA1, "ocsp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := p.config()
			cfg.OCSPResponder = responder(t, func(req *ocsp.Request) []byte {
				der, err := ocsp.CreateResponse(c.issuer, p.ocspCert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, IssuerHash: c.hash,
					ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: p.ocspCert}, p.ocspKey)
				if err != nil {
					t.Error(err)
				}
				return der
			})
			res := p.signed(t, cfg)
			if src := res.Reports[0].Chain[0].StatusSource; src != c.want {
				var b bytes.Buffer
				_ = res.WriteText(&b)
				t.Errorf("the signer's status from %q, want %q\n%s", src, c.want, b.String())
			}
		})
	}
}

// TestVerificationTimeout: Config.Timeout bounds one verification's
// fetches together: an OCSP responder that never answers leaves the
// signer's status TRY_LATER once it has passed, where without it the CRL,
// asked after the HTTP client's own timeout, would have answered.
func TestVerificationTimeout(t *testing.T) {
	p := newTestPKI(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the verifier gives up
	}))
	defer srv.Close()
	cfg := p.config()
	cfg.OCSPResponder = srv.URL
	cfg.Timeout = 50 * time.Millisecond
	res := p.signed(t, cfg)
	if res.Indication != Indeterminate || res.SubIndication != TryLater {
		var b bytes.Buffer
		_ = res.WriteText(&b)
		t.Errorf("%s/%s, want INDETERMINATE/TRY_LATER\n%s", res.Indication, res.SubIndication, b.String())
	}

	// The same when the time runs out fetching a missing issuer from
	// caIssuers: the chain is not missing, only late; and the failure is
	// not kept for the next verification.
	key := newKey(t)
	now := time.Now()
	leaf := citizenSignOf(t, key, big.NewInt(5002), now.Add(-time.Hour), p.ca, p.caKey, func(c *x509.Certificate) {
		c.IssuingCertificateURL = []string{srv.URL + "/issuing.crt"}
		c.OCSPServer, c.CRLDistributionPoints = []string{p.srv.URL + "/ocsp"}, []string{p.srv.URL + "/crl/issuing.crl"}
	})
	cfg = p.config()
	cfg.AnyAIA = true
	cfg.Timeout = 50 * time.Millisecond
	sig := buildCMS(t, document, true, []*x509.Certificate{leaf}, cmsSigner{cert: leaf, key: key, signingTime: now, ess: leaf})
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err = v.Verify(context.Background(), sig, document)
	if err != nil || res.Indication != Indeterminate || res.SubIndication != TryLater {
		t.Errorf("the issuer's fetch cut short: %+v %v, want INDETERMINATE/TRY_LATER", res, err)
	}
	if _, kept := v.aiaFailures.get(srv.URL + "/issuing.crt"); kept {
		t.Error("the fetch cut short by the verification's time is kept as the URL's failure")
	}

	// A caller that gives up first is told so, with no report.
	cfg.Timeout = time.Minute
	if v, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if res, err := v.Verify(ctx, sig, document); !errors.Is(err, context.DeadlineExceeded) || res != nil {
		t.Errorf("the caller's deadline passed: %+v %v; want its error", res, err)
	}
}
