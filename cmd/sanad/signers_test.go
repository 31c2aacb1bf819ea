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
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestNextSigner: which OCSP signer a running node takes for an issuing CA
// (checkSigners, ca.signer_check_interval). A signer added that lasts
// longer is taken; with current the best, nothing changes. A better one
// whose key is not on this node's token, or that take refuses, is passed
// over and named while current stays, as is one not valid yet; revoked,
// current is replaced by the next preferred signer whose key is here and
// that take accepts, and with none left it is reported revoked (the CA
// retires it), a signer record that cannot be read notwithstanding.
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
			return putCertified(ctx, tx, "issuing", "ocsp-signer", c, now)
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
	// refuse names the signers take refuses (as ca.CA.UseResponder refuses
	// one that does not fit the issuing CA).
	refuse := map[string]bool{}
	next := func(current *x509.Certificate) signerCheck {
		t.Helper()
		c := nextSigner(ctx, s, "issuing", issuing, signers, current, func(r ocspsign.Responder) error {
			if refuse[r.Certificate.Subject.CommonName] {
				return errors.New("refused by take")
			}
			return nil
		})
		if r := c.taken; r != nil && (r.Signer == nil || r.IssuerID != "issuing" || !r.Issuer.Equal(issuing)) {
			t.Errorf("nextSigner gave %s without its key or issuer", r.Certificate.Subject)
		}
		return c
	}
	took := func(c signerCheck) string {
		if c.taken == nil {
			return "none"
		}
		return c.taken.Certificate.Subject.CommonName
	}
	stays := func(what string, c signerCheck, problems ...string) {
		t.Helper()
		if c.taken != nil || c.revoked || (c.problems != nil) != (len(problems) > 0) {
			t.Errorf("%s: took %s, revoked %v, problems %v; want the signer in service to stay", what, took(c), c.revoked, c.problems)
		}
		for _, p := range problems {
			if c.problems == nil || !strings.Contains(c.problems.Error(), p) {
				t.Errorf("%s: problems %v; want them to name %s", what, c.problems, p)
			}
		}
	}

	a := signer(10, "ocsp-a", 30, true)
	stays("the only signer in service", next(a))
	b := signer(11, "ocsp-b", 60, true)
	if c := next(a); took(c) != "ocsp-b" || c.revoked || c.problems != nil {
		t.Errorf("a signer lasting longer added: took %s, revoked %v, %v; want ocsp-b", took(c), c.revoked, c.problems)
	}
	stays("the best signer in service", next(b))
	signer(12, "ocsp-c", 90, false)
	stays("a better signer without its key here", next(b), `key "ocsp-c"`)
	signer(13, "ocsp-d", 120, true)
	refuse["ocsp-d"] = true
	stays("a better signer that take refuses", next(b), `key "ocsp-c"`, "ocsp-d: refused by take")
	// Not valid yet, however long it lasts: after every valid one.
	func() {
		saved := now
		defer func() { now = saved }()
		now = now.Add(48 * time.Hour)
		signer(14, "ocsp-later", 365, true)
	}()
	stays("a signer not valid yet", next(b), `key "ocsp-c"`, "ocsp-d")

	revoke(b)
	if c := next(b); took(c) != "ocsp-a" || !c.revoked {
		t.Errorf("ocsp-b revoked: took %s, revoked %v (%v); want ocsp-a, the next one whose key is here and take accepts", took(c), c.revoked, c.problems)
	}
	// A signer record that cannot be read does not keep a revoked one.
	signers = append(signers, store.Issuer{ID: "garbled", Role: "ocsp-signer", CertificateDER: []byte{0x30, 0x03, 0x02, 0x01, 0x01}, KeyLabel: "garbled"})
	revoke(a)
	refuse["ocsp-later"] = true
	if c := next(a); c.taken != nil || !c.revoked || c.problems == nil || !strings.Contains(c.problems.Error(), "issuer garbled") {
		t.Errorf("every signer usable here revoked: took %s, revoked %v, problems %v; want none taken, revoked, naming the garbled record", took(c), c.revoked, c.problems)
	}
}
