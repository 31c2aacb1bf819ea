// Package catest is a test fixture: a root CA, an issuing CA under it and
// the issuing CA's delegated OCSP signer, with keys in a fresh SoftHSM2
// token, the shipped profiles, a linter and an OCSP signer — what tests of
// ca, ca/ocspsign and ca/crl build a CA from. Never imported by production
// code.
//
// The root is the trust anchor; the issuing CA is an intermediate that
// external judges (openssl, certtool) must be given as untrusted, so that
// tests check a real path: leaf, issuing CA, root.
package catest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/policies"
)

// Fixture is a root CA (the trust anchor of the tests), an issuing CA
// signed by it, and the issuing CA's OCSP signer.
type Fixture struct {
	Issuer    ca.Issuer
	Responder ocspsign.Responder
	CAKey     *hsm.Key
	// CAPEM is the issuing CA certificate as a PEM file, for OpenSSL and
	// GnuTLS: an untrusted intermediate, never the anchor.
	CAPEM string
	// Root is the self-signed root CA certificate and RootPEM its PEM
	// file: the only trust anchor.
	Root     *x509.Certificate
	RootPEM  string
	RootKey  *hsm.Key
	Profiles map[string]profile.Profile
	Linter   *lint.Linter
	OCSP     *ocspsign.Signer
	Now      time.Time
}

// Options choose the fixture's key types; zero values take the defaults.
type Options struct {
	// RootKey is the root CA's key type (default ECDSA P-384, a type the
	// root profile allows).
	RootKey hsm.KeyType
	// IssuerKey is the issuing CA's key type (default ECDSA P-256).
	IssuerKey hsm.KeyType
}

// Test URLs in the issuing CA certificate (the root's CRL and certificate)
// and in the certificates it issues.
const (
	rootCRLURL    = "http://pki.sanad.example/crl/root.crl"
	rootCertURL   = "http://pki.sanad.example/ca/root.crt"
	issuingCRLURL = "http://pki.sanad.example/crl/issuing.crl"
	issuingURL    = "http://pki.sanad.example/ca/issuing.crt"
	ocspURL       = "http://pki.sanad.example/ocsp"
)

// New makes the fixture with the default key types; now is when the
// certificates start.
func New(t testing.TB, now time.Time) Fixture {
	t.Helper()
	return NewWith(t, now, Options{})
}

// NewWith makes the fixture with the key types in opts.
func NewWith(t testing.TB, now time.Time, opts Options) Fixture {
	t.Helper()
	if opts.RootKey == "" {
		opts.RootKey = hsm.ECDSAP384
	}
	if opts.IssuerKey == "" {
		opts.IssuerKey = hsm.ECDSAP256
	}
	tok := hsmtest.NewToken(t).Token
	generate := func(label string, kt hsm.KeyType) *hsm.Key {
		t.Helper()
		k, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Label: label, Type: kt})
		if err != nil {
			t.Fatalf("generate %s key %s: %v", kt, label, err)
		}
		return k
	}
	rootKey := generate("root", opts.RootKey)
	caKey := generate("issuing", opts.IssuerKey)
	ocspKey := generate("ocsp", hsm.ECDSAP256)

	linter, err := ca.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	// The root profile: keyCertSign and cRLSign only, no path length, no
	// AIA or CRL distribution point (nothing is above it).
	root := Certify(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA", Country: []string{"KZ"}, Organization: []string{"Sanad"}},
		NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(20, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLen: -1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, rootKey.Public(), rootKey)
	// The intermediate profile: path length 0, the root's CRL and
	// certificate URLs, and anyPolicy (RFC 5280 §4.2.1.4), under which
	// every end-entity profile's policy is valid; zlint accepts anyPolicy
	// in a subordinate CA, not a non-CA/B Forum policy alone.
	caCert := Certify(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing CA", Country: []string{"KZ"}, Organization: []string{"Sanad"}},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		CRLDistributionPoints: []string{rootCRLURL}, IssuingCertificateURL: []string{rootCertURL},
		Policies: []x509.OID{mustOID(t, "2.5.29.32.0")},
	}, root, caKey.Public(), rootKey)
	ocspCert := Certify(t, responderTemplate(3, "Test OCSP Responder", now.AddDate(0, 0, -1), 60), caCert, ocspKey.Public(), caKey)
	// The fixture's own certificates pass zlint, as a ceremony's must.
	for _, c := range []*x509.Certificate{root, caCert, ocspCert} {
		if err := linter.Certificate(c.Raw); err != nil {
			t.Fatalf("%s: %v", c.Subject.CommonName, err)
		}
	}

	dir := t.TempDir()
	rootPEM, caPEM := filepath.Join(dir, "root.pem"), filepath.Join(dir, "issuing.pem")
	writePEM(t, rootPEM, root)
	writePEM(t, caPEM, caCert)
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	ocspSigner, err := ocspsign.New(0, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return Fixture{
		Issuer: ca.Issuer{ID: "issuing", Certificate: caCert, Signer: caKey, CRLURL: issuingCRLURL,
			OCSPURL: ocspURL, CAIssuersURL: issuingURL},
		Responder: ocspsign.Responder{IssuerID: "issuing", Issuer: caCert, Certificate: ocspCert, Signer: ocspKey},
		CAKey:     caKey, CAPEM: caPEM, Root: root, RootPEM: rootPEM, RootKey: rootKey,
		Profiles: profiles, Linter: linter, OCSP: ocspSigner, Now: now,
	}
}

// responderTemplate is an OCSP signer's certificate as the ocsp-signer
// profile has it (OCSPSigning, id-pkix-ocsp-nocheck), valid from notBefore
// for days.
func responderTemplate(serial int64, cn string, notBefore time.Time, days int) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Country: []string{"KZ"}, Organization: []string{"Sanad"}},
		NotBefore: notBefore, NotAfter: notBefore.AddDate(0, 0, days), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: asn1.NullBytes}},
	}
}

// NewResponder certifies another OCSP signer for f's issuing CA ("Test
// OCSP Responder <serial>"), valid from notBefore for days, with mutate
// (if any) applied to its template first, and a key made in memory (the
// CA takes any crypto.Signer): one taken after the CA started.
func (f Fixture) NewResponder(t testing.TB, serial int64, notBefore time.Time, days int, mutate func(*x509.Certificate)) (ocspsign.Responder, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := responderTemplate(serial, fmt.Sprintf("Test OCSP Responder %d", serial), notBefore, days)
	if mutate != nil {
		mutate(tmpl)
	}
	cert := Certify(t, tmpl, f.Issuer.Certificate, key.Public(), f.CAKey)
	return ocspsign.Responder{IssuerID: f.Issuer.ID, Issuer: f.Issuer.Certificate, Certificate: cert, Signer: key}, key
}

// Record records cert among the certificates of issuer, with profile, as
// sanad issuer add records an OCSP signer's certified at a ceremony.
func Record(t testing.TB, db *store.DB, issuer, profile string, cert *x509.Certificate) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return ca.RecordCertified(ctx, tx, issuer, profile, cert, now)
	}); err != nil {
		t.Fatal(err)
	}
}

// Certify signs tmpl (self-signed when parent is nil), with an SKI (RFC
// 5280 §4.2.1.2 method 1); x509.CreateCertificate adds the AKI from the
// parent's SKI when parent is another certificate.
func Certify(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	ski, err := ca.SubjectKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SubjectKeyId = ski
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustOID(t testing.TB, s string) x509.OID {
	t.Helper()
	oid, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

func writePEM(t testing.TB, path string, c *x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// PutIssuer records the issuing CA in db.
func (f Fixture) PutIssuer(t testing.TB, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutIssuer(ctx, store.Issuer{ID: f.Issuer.ID, Name: "Test Issuing CA", Role: "issuing",
			CertificateDER: f.Issuer.Certificate.Raw, KeyLabel: "issuing", CreatedAt: f.Now})
	}); err != nil {
		t.Fatal(err)
	}
}

// Deps are the CA's dependencies over db and log.
func (f Fixture) Deps(db *store.DB, log *audit.Log) ca.Deps {
	return ca.Deps{Store: db, Audit: log, Linter: f.Linter, OCSP: f.OCSP, Issuer: f.Issuer,
		Responder: f.Responder, Profiles: f.Profiles, Now: time.Now}
}

// CA records the issuer in db and returns a CA over it.
func (f Fixture) CA(t testing.TB, db *store.DB, log *audit.Log) *ca.CA {
	t.Helper()
	f.PutIssuer(t, db)
	authority, err := ca.New(f.Deps(db, log))
	if err != nil {
		t.Fatal(err)
	}
	return authority
}
