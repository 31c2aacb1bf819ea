package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/ocsp"
)

var document = []byte("Land registry extract 2026/4471: plot 12, Almaty region.\n")

// signJWS makes a compact JWS with x5c = certs, attached or detached.
func signJWS(t testing.TB, signer *cmsSigner, certs []*x509.Certificate, payload []byte, detached bool, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	var x5c []string
	for _, c := range certs {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	opts.WithHeader("x5c", x5c)
	for k, v := range extra {
		opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if detached {
		out, err = obj.DetachedCompactSerialize()
	} else {
		out, err = obj.CompactSerialize()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signES256 signs payload under header, a protected header written by
// hand, and returns both parts of the JWS, base64url.
func signES256(t testing.TB, key *ecdsa.PrivateKey, header string, payload []byte) (string, string) {
	t.Helper()
	h := base64.RawURLEncoding.EncodeToString([]byte(header))
	sum := sha256.Sum256([]byte(h + "." + base64.RawURLEncoding.EncodeToString(payload)))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return h, base64.RawURLEncoding.EncodeToString(sig)
}

// input is one case of TestValidationCases: the signature and content,
// and how the verifier and the PKI's services are set for it.
type input struct {
	sig, content []byte
	cfg          func(*Config)
	before       func()
}

// TestValidationCases is issue 8's table of cases, each with its expected
// indication and sub-indication, against a PKI whose OCSP responder, CRLs
// and caIssuers are real HTTP on loopback.
func TestValidationCases(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	key := newKey(t)
	good := p.leaf(t, key, citizenSign())
	signer := cmsSigner{cert: good, key: key, signingTime: now, ess: good}
	chain := []*x509.Certificate{good, p.ca}

	cases := []struct {
		name string
		in   func(t *testing.T) input
		ind  Indication
		sub  SubIndication
		then func(t *testing.T, r *Result)
	}{
		{"detached CMS passes", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			rep := r.Reports[0]
			if rep.Signer.NationalID != "IDCKZ-880312448217" || rep.Signer.Name != "Aigerim Sadykova" || rep.Signer.Profile != "citizen-sign" {
				t.Errorf("signer %+v", rep.Signer)
			}
			if rep.SigningTimeSource != "signing-time attribute" || rep.SigningTime.Unix() != now.Unix() {
				t.Errorf("signing time %v from %q", rep.SigningTime, rep.SigningTimeSource)
			}
			if len(rep.Chain) != 3 || rep.Chain[0].Status != "good" || rep.Chain[0].StatusSource != "ocsp" || len(rep.Chain[0].OCSPResponse) == 0 ||
				rep.Chain[1].StatusSource != "crl" || rep.Chain[1].Status != "good" || rep.Chain[2].Source != "trust-anchor" {
				t.Errorf("chain %+v", rep.Chain)
			}
			if _, err := ocsp.ParseResponse(rep.Chain[0].OCSPResponse, p.ca); err != nil {
				t.Errorf("kept OCSP response: %v", err)
			}
			for _, want := range []string{"format", "identification", "crypto", "chain", "constraints", "revocation", "time"} {
				found := false
				for _, c := range rep.Checks {
					found = found || c.Name == want && c.Result == Passed
				}
				if !found {
					t.Errorf("no passed %s check in %+v", want, rep.Checks)
				}
			}
		}},
		{"attached CMS passes", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, false, chain, signer)}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			if sum := sha256.Sum256(document); r.Reports[0].ContentSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("content_sha256 %s", r.Reports[0].ContentSHA256)
			}
		}},
		{"attached CMS with the same content given", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, false, chain, signer), content: document}
		}, TotalPassed, "", nil},
		{"attached CMS with other content given", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, false, chain, signer), content: []byte("I agree to pay 1,000,000")}
		}, TotalFailed, HashFailure, nil},
		{"multipart/signed whose signature carries content of its own", func(t *testing.T) input {
			attached := buildCMS(t, []byte("hello"), false, chain, signer)
			msg := "MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=\"b\"\r\n\r\n" +
				"--b\r\nContent-Type: text/plain\r\n\r\nPay 1,000,000 to Mallory\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n" +
				"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(attached) + "\r\n--b--\r\n"
			return input{sig: []byte(msg)}
		}, TotalFailed, FormatFailure, nil},
		{"signer identified by subjectKeyIdentifier", func(t *testing.T) input {
			s := signer
			s.ski = true
			return input{sig: buildCMS(t, document, false, chain, s)}
		}, TotalPassed, "", nil},
		{"content changed after signing", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: append([]byte("X"), document...)}
		}, TotalFailed, HashFailure, nil},
		{"signature bytes flipped", func(t *testing.T) input {
			sig := buildCMS(t, document, true, chain, signer)
			sig[len(sig)-5] ^= 0x01
			return input{sig: sig, content: document}
		}, TotalFailed, SigCryptoFailure, nil},
		{"detached CMS without content", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer)}
		}, Indeterminate, SignedDataNotFound, nil},
		{"certificate revoked before the signing time", func(t *testing.T) input {
			k := newKey(t)
			c := p.leaf(t, k, citizenSign())
			p.revoke(c.SerialNumber, now.Add(-10*time.Minute), 1)
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, TotalFailed, Revoked, nil},
		{"certificate revoked after the signing time", func(t *testing.T) input {
			k := newKey(t)
			c := p.leaf(t, k, citizenSign())
			p.revoke(c.SerialNumber, now.Add(-10*time.Minute), 1)
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now.Add(-30 * time.Minute)}), content: document}
		}, Indeterminate, RevokedNoPOE, func(t *testing.T, r *Result) {
			leaf := r.Reports[0].Chain[0]
			if leaf.Status != "revoked" || leaf.Reason != "keyCompromise" || leaf.RevokedAt.Unix() != now.Add(-10*time.Minute).Unix() || len(leaf.OCSPResponse) == 0 {
				t.Errorf("revoked entry %+v", leaf)
			}
			resp, err := ocsp.ParseResponse(leaf.OCSPResponse, p.ca)
			if err != nil || resp.Status != ocsp.Revoked {
				t.Errorf("kept OCSP proof: %v %v", resp, err)
			}
		}},
		{"expired certificate", func(t *testing.T) input {
			k := newKey(t)
			c := p.leaf(t, k, leafOptions{notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(time.Hour), keyUsage: citizenSign().keyUsage})
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document,
				cfg: func(cfg *Config) { cfg.Now = func() time.Time { return now.Add(48 * time.Hour) } }}
		}, Indeterminate, OutOfBoundsNoPOE, nil},
		{"not yet valid certificate", func(t *testing.T) input {
			k := newKey(t)
			c := p.leaf(t, k, leafOptions{notBefore: now.Add(24 * time.Hour), keyUsage: citizenSign().keyUsage})
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, TotalFailed, NotYetValid, nil},
		{"signing time before notBefore, status unreachable", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, cmsSigner{cert: good, key: key, signingTime: now.Add(-2 * time.Hour)}), content: document,
				before: func() { p.ocspDown.Store(true); p.crlDown.Store(true) }}
		}, TotalFailed, NotYetValid, func(t *testing.T, r *Result) {
			if !strings.Contains(r.Reports[0].Reason, "before the certificate's notBefore") {
				t.Errorf("reason %q", r.Reports[0].Reason)
			}
		}},
		{"signing time in the future", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, cmsSigner{cert: good, key: key, signingTime: now.Add(3 * time.Hour)}), content: document}
		}, Indeterminate, SigConstraintsFailure, nil},
		{"signer from an unknown root", func(t *testing.T) input {
			other := newTestPKI(t)
			k := newKey(t)
			c := other.leaf(t, k, citizenSign())
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, other.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, Indeterminate, NoCertificateChainFound, nil},
		{"missing intermediate fetched by AIA", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{good}, signer), content: document}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			if c := r.Reports[0].Chain; len(c) != 3 || c[1].Source != "aia" || c[1].URL != p.srv.URL+"/ca/issuing.crt" {
				t.Errorf("chain %+v", c)
			}
		}},
		{"caIssuers under an allowed prefix", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{good}, signer), content: document,
				cfg: func(cfg *Config) { cfg.AnyAIA, cfg.AIAPrefixes = false, []string{p.srv.URL + "/ca/"} }}
		}, TotalPassed, "", nil},
		{"caIssuers outside the allowed prefixes", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{good}, signer), content: document,
				cfg: func(cfg *Config) { cfg.AnyAIA, cfg.AIAPrefixes = false, []string{"https://pki.example.kz/"} }}
		}, Indeterminate, NoCertificateChainFound, func(t *testing.T, r *Result) {
			if !strings.Contains(r.Reports[0].Reason, "not under an allowed prefix") {
				t.Errorf("reason %q", r.Reports[0].Reason)
			}
		}},
		{"caIssuers redirected outside the allowed prefixes", func(t *testing.T) input {
			k := newKey(t)
			o := citizenSign()
			o.caIssuers = "/redirect/issuing.crt"
			c := p.leaf(t, k, o)
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c}, cmsSigner{cert: c, key: k, signingTime: now}), content: document,
				cfg: func(cfg *Config) { cfg.AnyAIA, cfg.AIAPrefixes = false, []string{p.srv.URL + "/redirect/"} }}
		}, Indeterminate, NoCertificateChainFound, func(t *testing.T, r *Result) {
			if !strings.Contains(r.Reports[0].Reason, "redirect to") {
				t.Errorf("reason %q", r.Reports[0].Reason)
			}
		}},
		{"intermediate unavailable", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{good}, signer), content: document,
				before: func() { p.aiaDown.Store(true) }}
		}, Indeterminate, NoCertificateChainFound, nil},
		{"OCSP responder and CRL down", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspDown.Store(true); p.crlDown.Store(true) }}
		}, Indeterminate, TryLater, nil},
		{"OCSP responder down, CRL answers", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspDown.Store(true) }}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			if c := r.Reports[0].Chain[0]; c.StatusSource != "crl" || c.CRLNumber == "" {
				t.Errorf("leaf status %+v", c)
			}
		}},
		{"OCSP answers unknown, CRL does not list it", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspUnknown.Store(true) }}
		}, Indeterminate, CertificateChainGeneralFail, func(t *testing.T, r *Result) {
			if c := r.Reports[0].Chain[0]; c.Status != "unknown" || c.StatusSource != "ocsp" || len(c.OCSPResponse) == 0 || !strings.Contains(r.Reports[0].Reason, `a signed "unknown"`) {
				t.Errorf("leaf status %+v, reason %q", c, r.Reports[0].Reason)
			}
		}},
		{"OCSP answers unauthorized, CRL does not list it", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspError.Store(&ocsp.UnauthorizedErrorResponse) }}
		}, Indeterminate, CertificateChainGeneralFail, func(t *testing.T, r *Result) {
			if c := r.Reports[0].Chain[0]; c.Status != "unknown" || c.StatusSource != "ocsp" || !strings.Contains(r.Reports[0].Reason, `"unauthorized"`) {
				t.Errorf("leaf status %+v, reason %q", c, r.Reports[0].Reason)
			}
		}},
		{"configured responder answers unauthorized", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				cfg:    func(cfg *Config) { cfg.OCSPResponder = p.srv.URL + "/ocsp" },
				before: func() { p.ocspError.Store(&ocsp.UnauthorizedErrorResponse) }}
		}, Indeterminate, CertificateChainGeneralFail, nil},
		{"OCSP answers tryLater, CRL answers", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspError.Store(&ocsp.TryLaterErrorResponse) }}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			if c := r.Reports[0].Chain[0]; c.StatusSource != "crl" {
				t.Errorf("leaf status %+v", c)
			}
		}},
		{"OCSP answers internalError, CRL answers", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspError.Store(&ocsp.InternalErrorErrorResponse) }}
		}, TotalPassed, "", nil},
		{"old OCSP answer without nextUpdate", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, chain, signer), content: document,
				before: func() { p.ocspOld.Store(true); p.crlDown.Store(true) }}
		}, Indeterminate, TryLater, func(t *testing.T, r *Result) {
			if !strings.Contains(r.Reports[0].Reason, "no nextUpdate") {
				t.Errorf("reason %q", r.Reports[0].Reason)
			}
		}},
		{"delta CRL", revokedLeafWithCRL(p, pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: []byte{0x02, 0x01, 0x01}}), Indeterminate, TryLater, nil},
		{"partitioned CRL", revokedLeafWithCRL(p, pkix.Extension{Id: oidIssuingDistPoint, Critical: true, Value: []byte{0x30, 0x03, 0x82, 0x01, 0xff}}), Indeterminate, TryLater, nil},
		{"CRL with an unknown critical extension", revokedLeafWithCRL(p, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{0x05, 0x00}}), Indeterminate, TryLater, nil},
		{"CRL with an unknown non-critical extension", revokedLeafWithCRL(p, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{0x05, 0x00}}), TotalFailed, Revoked, nil},
		{"key usage without signing", func(t *testing.T) input {
			k := newKey(t)
			c := p.leaf(t, k, leafOptions{keyUsage: 1 << 2}) // keyEncipherment
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, Indeterminate, ChainConstraintsFailure, nil},
		{"CA limited to TLS servers", func(t *testing.T) input {
			caKey := newKey(t)
			tlsCA := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "TLS Only CA"},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
				KeyUsage: x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, p.root, caKey.Public(), p.rootKey)
			k := newKey(t)
			c := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(78), Subject: pkix.Name{CommonName: "Signer"},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageContentCommitment,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}, tlsCA, k.Public(), caKey)
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, tlsCA}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, Indeterminate, ChainConstraintsFailure, func(t *testing.T, r *Result) {
			if !strings.Contains(r.Reports[0].Reason, "TLS Only CA") {
				t.Errorf("reason %q", r.Reports[0].Reason)
			}
		}},
		{"certificate signed with SHA-1", func(t *testing.T) input {
			k := newKey(t)
			c := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(79), Subject: pkix.Name{CommonName: "Signer", SerialNumber: "IDCKZ-880312448217"},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageContentCommitment,
				SignatureAlgorithm: x509.ECDSAWithSHA1}, p.ca, k.Public(), p.caKey)
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, Indeterminate, CryptoConstraintsFailure, func(t *testing.T, r *Result) {
			if !strings.Contains(r.Reports[0].Reason, "insecure") {
				t.Errorf("reason %q", r.Reports[0].Reason)
			}
		}},
		{"authentication certificate", func(t *testing.T) input {
			k := newKey(t)
			c := p.leaf(t, k, leafOptions{keyUsage: x509.KeyUsageDigitalSignature, ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, Indeterminate, ChainConstraintsFailure, nil},
		{"ESS names another certificate", func(t *testing.T) input {
			s := signer
			s.ess = p.ca
			return input{sig: buildCMS(t, document, true, chain, s), content: document}
		}, Indeterminate, NoSigningCertificateFound, nil},
		{"signer certificate not carried", func(t *testing.T) input {
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{p.ca}, signer), content: document}
		}, Indeterminate, NoSigningCertificateFound, nil},
		{"business seal", func(t *testing.T) input {
			k := newKey(t)
			o := citizenSign()
			o.business, o.keyUsage, o.ekus = true, x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment, nil
			c := p.leaf(t, k, o)
			return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: now}), content: document}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			if s := r.Reports[0].Signer; s.OrganizationIdentifier != "NTRKZ-990140001234" || s.Organization != "Qazaq Grain LLP" || s.Profile != "business-seal" {
				t.Errorf("seal signer %+v", s)
			}
		}},
		{"JWS compact passes", func(t *testing.T) input {
			return input{sig: []byte(signJWS(t, &signer, chain, document, false, map[jose.HeaderKey]any{"sigT": now.UTC().Format(time.RFC3339)}))}
		}, TotalPassed, "", func(t *testing.T, r *Result) {
			if rep := r.Reports[0]; rep.Format != FormatJWS || rep.SigningTimeSource != "sigT header" {
				t.Errorf("JWS report %+v", rep)
			}
		}},
		{"JWS with other content given", func(t *testing.T) input {
			return input{sig: []byte(signJWS(t, &signer, chain, document, false, nil)), content: []byte("I agree to pay 1,000,000")}
		}, TotalFailed, HashFailure, nil},
		{"JWS with an RSA-1024 key", func(t *testing.T) input {
			k, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			c := p.leaf(t, k, citizenSign())
			opts := (&jose.SignerOptions{}).WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(c.Raw), base64.StdEncoding.EncodeToString(p.ca.Raw)})
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := js.Sign(document)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := obj.CompactSerialize()
			return input{sig: []byte(out)}
		}, Indeterminate, CryptoConstraintsFailure, nil},
		{"JWS detached payload", func(t *testing.T) input {
			return input{sig: []byte(signJWS(t, &signer, chain, document, true, nil)), content: document}
		}, TotalPassed, "", nil},
		{"JWS detached payload changed", func(t *testing.T) input {
			return input{sig: []byte(signJWS(t, &signer, chain, document, true, nil)), content: []byte("another document")}
		}, TotalFailed, SigCryptoFailure, nil},
		{"JWS detached without payload", func(t *testing.T) input {
			return input{sig: []byte(signJWS(t, &signer, chain, document, true, nil))}
		}, Indeterminate, SignedDataNotFound, nil},
		{"JWS unencoded detached payload (RFC 7797)", func(t *testing.T) input {
			opts := (&jose.SignerOptions{}).WithBase64(false).WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(good.Raw), base64.StdEncoding.EncodeToString(p.ca.Raw)})
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign(document)
			if err != nil {
				t.Fatal(err)
			}
			out, err := obj.DetachedCompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			return input{sig: []byte(out), content: document}
		}, TotalPassed, "", nil},
		{"JWS alg none", func(t *testing.T) input {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","x5c":["` + base64.StdEncoding.EncodeToString(good.Raw) + `"]}`))
			return input{sig: []byte(h + "." + base64.RawURLEncoding.EncodeToString(document) + ".")}
		}, TotalFailed, FormatFailure, nil},
		{"JWS x5c that does not match the key", func(t *testing.T) input {
			other := cmsSigner{cert: good, key: newKey(t)}
			return input{sig: []byte(signJWS(t, &other, chain, document, false, nil))}
		}, TotalFailed, SigCryptoFailure, nil},
		{"JWS without x5c", func(t *testing.T) input {
			return input{sig: []byte(signJWS(t, &signer, nil, document, false, nil))}
		}, Indeterminate, NoSigningCertificateFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.ocspDown.Store(false)
			p.crlDown.Store(false)
			p.aiaDown.Store(false)
			p.ocspOld.Store(false)
			p.ocspUnknown.Store(false)
			p.ocspError.Store(nil)
			p.crlExt.Store(nil)
			in := tc.in(t)
			cfg := p.config()
			if in.cfg != nil {
				in.cfg(&cfg)
			}
			if in.before != nil {
				in.before()
			}
			v, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(context.Background(), in.sig, in.content)
			if err != nil {
				t.Fatal(err)
			}
			if res.Indication != tc.ind || res.SubIndication != tc.sub {
				var text bytes.Buffer
				_ = res.WriteText(&text)
				t.Fatalf("got %s/%s, want %s/%s\n%s", res.Indication, res.SubIndication, tc.ind, tc.sub, text.String())
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
			if tc.then != nil {
				tc.then(t, res)
			}
		})
	}
}

// revokedLeafWithCRL is a case: a certificate revoked before it signed,
// OCSP down, and the issuing CA's CRL, which lists it, carrying ext.
func revokedLeafWithCRL(p *testPKI, ext pkix.Extension) func(t *testing.T) input {
	return func(t *testing.T) input {
		k := newKey(t)
		c := p.leaf(t, k, citizenSign())
		p.revoke(c.SerialNumber, time.Now().Add(-time.Hour), 1)
		return input{sig: buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: time.Now()}), content: document,
			before: func() { p.ocspDown.Store(true); p.crlExt.Store(&ext) }}
	}
}

// TestMultipleSigners: one report per signer, each judged on its own.
func TestMultipleSigners(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	k1, k2 := newKey(t), newKey(t)
	c1, c2 := p.leaf(t, k1, citizenSign()), p.leaf(t, k2, citizenSign())
	p.revoke(c2.SerialNumber, now.Add(-time.Hour), 4)
	sig := buildCMS(t, document, true, []*x509.Certificate{c1, c2, p.ca},
		cmsSigner{cert: c1, key: k1, signingTime: now}, cmsSigner{cert: c2, key: k2, signingTime: now})
	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(context.Background(), sig, document)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Reports) != 2 || res.Reports[0].Indication != TotalPassed || res.Reports[1].SubIndication != Revoked || res.Indication != TotalFailed {
		t.Fatalf("reports: %+v", res)
	}
	if res.Reports[1].Chain[0].Reason != "superseded" || res.Reports[0].Signer.Serial != serialHex(c1.SerialNumber) {
		t.Errorf("second signer %+v", res.Reports[1].Chain[0])
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil || !strings.Contains(text.String(), "signature 2: TOTAL_FAILED / REVOKED") {
		t.Errorf("text report:\n%s", text.String())
	}
}

// TestWorstReportDecides: a document with a failed signer is
// TOTAL_FAILED whichever signer comes first, though another signer's
// validation is INDETERMINATE (the first report that did not pass decided,
// so an undetermined signer hid a revoked one).
func TestWorstReportDecides(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	authKey, revokedKey := newKey(t), newKey(t)
	auth := p.leaf(t, authKey, leafOptions{keyUsage: x509.KeyUsageDigitalSignature, ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	revoked := p.leaf(t, revokedKey, citizenSign())
	p.revoke(revoked.SerialNumber, now.Add(-time.Hour), 1)
	undetermined := cmsSigner{cert: auth, key: authKey, signingTime: now}
	failed := cmsSigner{cert: revoked, key: revokedKey, signingTime: now}
	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	for name, signers := range map[string][]cmsSigner{
		"undetermined first": {undetermined, failed},
		"failed first":       {failed, undetermined},
	} {
		sig := buildCMS(t, document, true, []*x509.Certificate{auth, revoked, p.ca}, signers...)
		res, err := v.Verify(context.Background(), sig, document)
		if err != nil {
			t.Fatal(err)
		}
		subs := map[SubIndication]bool{}
		for _, rep := range res.Reports {
			subs[rep.SubIndication] = true
		}
		if len(res.Reports) != 2 || !subs[ChainConstraintsFailure] || !subs[Revoked] || res.Indication != TotalFailed || res.SubIndication != Revoked {
			t.Errorf("%s: %s/%s, reports %+v", name, res.Indication, res.SubIndication, res.Reports)
		}
	}
}

// TestRevocationCache: a second verification within the cache's lifetime
// does not ask the responder again.
func TestRevocationCache(t *testing.T) {
	p := newTestPKI(t)
	k := newKey(t)
	c := p.leaf(t, k, citizenSign())
	sig := buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, cmsSigner{cert: c, key: k, signingTime: time.Now()})
	cfg := p.config()
	cfg.RevocationCacheTTL = time.Minute
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		res, err := v.Verify(context.Background(), sig, document)
		if err != nil || res.Indication != TotalPassed {
			t.Fatalf("run %d: %+v %v", i, res, err)
		}
	}
	if n := p.ocspRequests.Load(); n != 1 {
		t.Errorf("%d OCSP requests for three verifications", n)
	}
}

// TestJWSJSONSerialization: a JWS in the general JSON serialization with
// two signers gets a report each; the flattened form with a detached
// payload verifies with the content given.
func TestJWSJSONSerialization(t *testing.T) {
	p := newTestPKI(t)
	k1, k2 := newKey(t), newKey(t)
	c1, c2 := p.leaf(t, k1, citizenSign()), p.leaf(t, k2, citizenSign())
	x5c := func(c *x509.Certificate) []string {
		return []string{base64.StdEncoding.EncodeToString(c.Raw), base64.StdEncoding.EncodeToString(p.ca.Raw)}
	}
	ms, err := jose.NewMultiSigner([]jose.SigningKey{{Algorithm: jose.ES256, Key: k1}, {Algorithm: jose.ES256, Key: k2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := ms.Sign(document)
	if err != nil {
		t.Fatal(err)
	}
	// go-jose's multi-signer takes no per-signer headers; put x5c in each
	// signature's unprotected header, where RFC 7515 §7.2.1 allows it.
	var general map[string]any
	if err := json.Unmarshal([]byte(obj.FullSerialize()), &general); err != nil {
		t.Fatal(err)
	}
	sigs := general["signatures"].([]any)
	sigs[0].(map[string]any)["header"] = map[string]any{"x5c": x5c(c1)}
	sigs[1].(map[string]any)["header"] = map[string]any{"x5c": x5c(c2)}
	two, _ := json.Marshal(general)

	p.revoke(c2.SerialNumber, time.Now().Add(-time.Hour), 1)
	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(context.Background(), two, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Reports) != 2 || res.Reports[0].Indication != TotalPassed || res.Reports[1].SubIndication != RevokedNoPOE ||
		res.Reports[0].Signer.Serial != serialHex(c1.SerialNumber) || res.Reports[1].Signer.Serial != serialHex(c2.SerialNumber) {
		t.Fatalf("two JWS signers: %+v", res)
	}

	// Flattened, detached: the payload member left out.
	one := signJWS(t, &cmsSigner{cert: c1, key: k1}, []*x509.Certificate{c1, p.ca}, document, true, nil)
	parts := strings.Split(one, ".")
	flat := []byte(`{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`)
	for _, tc := range []struct {
		content []byte
		ind     Indication
		sub     SubIndication
	}{{document, TotalPassed, ""}, {[]byte("other"), TotalFailed, SigCryptoFailure}, {nil, Indeterminate, SignedDataNotFound}} {
		res, err := v.Verify(context.Background(), flat, tc.content)
		if err != nil || res.Indication != tc.ind || res.SubIndication != tc.sub {
			t.Errorf("flattened detached with %q: %+v %v", tc.content, res, err)
		}
	}
}
