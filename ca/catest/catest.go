// Package catest is a test fixture: an issuing CA and its delegated OCSP
// signer with keys in a fresh SoftHSM2 token, the shipped profiles, a
// linter and an OCSP signer — what tests of ca, ca/ocspsign and ca/crl
// build a CA from. Never imported by production code.
package catest

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
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

// Fixture is an issuing CA (the trust anchor of the tests) and its OCSP
// signer.
type Fixture struct {
	Issuer    ca.Issuer
	Responder ocspsign.Responder
	CAKey     *hsm.Key
	// CAPEM is the issuing CA certificate as a PEM file, for OpenSSL.
	CAPEM    string
	Profiles map[string]profile.Profile
	Linter   *lint.Linter
	OCSP     *ocspsign.Signer
	Now      time.Time
}

// New makes the fixture; now is when the certificates start.
func New(t testing.TB, now time.Time) Fixture {
	t.Helper()
	tok := hsmtest.NewToken(t).Token
	caKey, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Label: "issuing", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	ocspKey, err := tok.GenerateKey(context.Background(), hsm.KeySpec{Label: "ocsp", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	caCert := Certify(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Issuing CA", Country: []string{"KZ"}, Organization: []string{"Sanad"}},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil, caKey.Public(), caKey)
	ocspCert := Certify(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test OCSP Responder", Country: []string{"KZ"}, Organization: []string{"Sanad"}},
		NotBefore: now.AddDate(0, 0, -1), NotAfter: now.AddDate(0, 0, 60), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: asn1.NullBytes}},
	}, caCert, ocspKey.Public(), caKey)
	caPEM := filepath.Join(t.TempDir(), "issuing.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	linter, err := ca.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	ocspSigner, err := ocspsign.New(0, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return Fixture{
		Issuer: ca.Issuer{ID: "issuing", Certificate: caCert, Signer: caKey, CRLURL: "http://pki.sanad.example/crl/issuing.crl",
			OCSPURL: "http://pki.sanad.example/ocsp", CAIssuersURL: "http://pki.sanad.example/ca/issuing.crt"},
		Responder: ocspsign.Responder{IssuerID: "issuing", Issuer: caCert, Certificate: ocspCert, Signer: ocspKey},
		CAKey:     caKey, CAPEM: caPEM, Profiles: profiles, Linter: linter, OCSP: ocspSigner, Now: now,
	}
}

// Certify signs tmpl (self-signed when parent is nil), with an SKI.
func Certify(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	ski := sha256.Sum256(spki)
	tmpl.SubjectKeyId = ski[:20]
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
