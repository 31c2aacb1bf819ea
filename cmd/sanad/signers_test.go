package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestNextSigner: which OCSP signer a running node takes for an issuing CA
// (checkSigners, ca.signer_check_interval). A signer added that lasts
// longer is taken; with current the best, nothing changes. A better one
// whose key is not on this node's token is passed over, with an error
// naming it while current stays; revoked, current is replaced by the next
// preferred signer whose key is here, and with none left it is reported
// revoked (errSignerRevoked: the CA retires it).
func TestNextSigner(t *testing.T) {
	requireSoftHSM(t)
	ctx := t.Context()
	tok := hsmtest.NewToken(t).Token
	now := time.Now().UTC().Truncate(time.Second)
	key := func(label string) *hsm.Key {
		t.Helper()
		k, err := tok.GenerateKey(ctx, hsm.KeySpec{Label: label, Type: hsm.ECDSAP256})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	issuingKey := key("issuing")
	issuing := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Issuing"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, issuingKey.Public(), issuingKey)
	db, _ := storetest.Open(t, store.DriverSQLite)
	s := &service{db: db, token: tok, now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Issuing", Role: "issuing", CertificateDER: issuing.Raw, KeyLabel: "issuing", CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	var signers []store.Issuer
	// signer records an OCSP signer lasting days, among the issuing CA's
	// certificates, its key labelled label (on the token if onToken).
	signer := func(serial int64, label string, days int, onToken bool) *x509.Certificate {
		t.Helper()
		var pub crypto.PublicKey
		if onToken {
			pub = key(label).Public()
		} else { // certified elsewhere: no key of that label on this node's token
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			pub = k.Public()
		}
		c := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: label},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 0, days), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, issuing, pub, issuingKey)
		is := store.Issuer{ID: label, Name: label, Role: "ocsp-signer", CertificateDER: c.Raw, KeyLabel: label, CreatedAt: now}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutIssuer(ctx, is); err != nil {
				return err
			}
			if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: c.SerialNumber.Bytes(), Profile: "ocsp-signer",
				NotBefore: c.NotBefore, NotAfter: c.NotAfter, TBS: c.RawTBSCertificate, Status: store.StatusGood, CreatedAt: now}); err != nil {
				return err
			}
			return tx.SetCertificateDER(ctx, "issuing", c.SerialNumber.Bytes(), c.Raw, now)
		}); err != nil {
			t.Fatal(err)
		}
		signers = append(signers, is)
		return c
	}
	revoke := func(c *x509.Certificate) {
		t.Helper()
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", c.SerialNumber.Bytes(), now, 1, now)
		}); err != nil {
			t.Fatal(err)
		}
	}
	next := func(current *x509.Certificate) (*x509.Certificate, error) {
		t.Helper()
		r, err := nextSigner(ctx, s, "issuing", issuing, signers, current)
		if r.Certificate != nil && (r.Signer == nil || r.IssuerID != "issuing" || !r.Issuer.Equal(issuing)) {
			t.Errorf("nextSigner gave %s without its key or issuer", r.Certificate.Subject)
		}
		return r.Certificate, err
	}
	name := func(c *x509.Certificate) string {
		if c == nil {
			return "none"
		}
		return c.Subject.CommonName
	}

	a := signer(10, "ocsp-a", 30, true)
	if got, err := next(a); got != nil || err != nil {
		t.Errorf("the only signer in service: nextSigner = %s, %v; want it to stay", name(got), err)
	}
	b := signer(11, "ocsp-b", 60, true)
	if got, err := next(a); got == nil || !got.Equal(b) || err != nil {
		t.Errorf("a signer lasting longer added: nextSigner = %s, %v; want ocsp-b", name(got), err)
	}
	if got, err := next(b); got != nil || err != nil {
		t.Errorf("the best signer in service: nextSigner = %s, %v; want it to stay", name(got), err)
	}
	signer(12, "ocsp-c", 90, false)
	if got, err := next(b); got != nil || err == nil || errors.Is(err, errSignerRevoked) {
		t.Errorf("a better signer without its key here: nextSigner = %s, %v; want ocsp-b to stay, with an error naming ocsp-c", name(got), err)
	}
	revoke(b)
	if got, err := next(b); got == nil || !got.Equal(a) || err != nil {
		t.Errorf("ocsp-b revoked: nextSigner = %s, %v; want ocsp-a (ocsp-c's key is not here)", name(got), err)
	}
	revoke(a)
	if got, err := next(a); got != nil || !errors.Is(err, errSignerRevoked) {
		t.Errorf("every signer with its key here revoked: nextSigner = %s, %v; want errSignerRevoked", name(got), err)
	}
	if _, err := next(a); err == nil || !strings.Contains(err.Error(), `key "ocsp-c"`) {
		t.Errorf("the refusal does not name the signer whose key is missing: %v", err)
	}
}
