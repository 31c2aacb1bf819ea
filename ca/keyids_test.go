package ca_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestFillKeyIDs: certificates stored before certificates recorded their
// key get its KeyID (the one issuance records and BlockKey blocks), read
// from the DER or, for an intent, the TBS; a row whose TBS does not parse
// is counted, named and left, and the fill goes on past it.
func TestFillKeyIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		f := catest.New(t, time.Now().UTC().Truncate(time.Second))
		f.PutIssuer(t, db)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signed := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(0x51), Subject: pkix.Name{CommonName: "signed"},
			NotBefore: f.Now.Add(-time.Hour), NotAfter: f.Now.AddDate(1, 0, 0)}, f.Issuer.Certificate, key.Public(), f.CAKey)
		intent := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(0x52), Subject: pkix.Name{CommonName: "intent"},
			NotBefore: f.Now.Add(-time.Hour), NotAfter: f.Now.AddDate(1, 0, 0)}, f.Issuer.Certificate, key.Public(), f.CAKey)
		catest.Record(t, db, f.Issuer.ID, "citizen-auth", signed)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			for _, c := range []store.Certificate{
				{IssuerID: f.Issuer.ID, Serial: intent.SerialNumber.Bytes(), Profile: "citizen-auth", NotBefore: intent.NotBefore,
					NotAfter: intent.NotAfter, TBS: intent.RawTBSCertificate, CreatedAt: f.Now},
				{IssuerID: f.Issuer.ID, Serial: []byte{0x50}, Profile: "citizen-auth", NotBefore: intent.NotBefore,
					NotAfter: intent.NotAfter, TBS: []byte{0x30, 0x00}, CreatedAt: f.Now},
			} {
				if err := tx.InsertCertificateIntent(ctx, c); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want, err := ca.KeyID(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if c, err := db.Certificate(ctx, f.Issuer.ID, signed.SerialNumber.Bytes()); err != nil || !bytes.Equal(c.SPKISHA256, want) {
			t.Fatalf("a certificate recorded signed: key %x, %v; want %x", c.SPKISHA256, err, want)
		}
		if _, err := raw.ExecContext(ctx, `UPDATE certificates SET spki_sha256 = NULL`); err != nil {
			t.Fatal(err)
		}

		filled, unreadable, err := ca.FillKeyIDs(ctx, db)
		if filled != 2 || unreadable != 1 || err == nil || !strings.Contains(err.Error(), ca.SerialObject(f.Issuer.ID, []byte{0x50})) {
			t.Fatalf("FillKeyIDs: %d filled, %d unreadable, %v; want 2, and 1 named", filled, unreadable, err)
		}
		for _, c := range []*x509.Certificate{signed, intent} {
			row, err := db.Certificate(ctx, f.Issuer.ID, c.SerialNumber.Bytes())
			if err != nil || !bytes.Equal(row.SPKISHA256, want) {
				t.Errorf("%s: key %x, %v; want %x", c.Subject.CommonName, row.SPKISHA256, err, want)
			}
		}
		if got, err := db.CertificatesOfKey(ctx, want, f.Now, 10); err != nil || len(got) != 0 {
			t.Errorf("CertificatesOfKey: %d certificates, %v; want none: neither is a subject's", len(got), err)
		}
		if filled, unreadable, _ := ca.FillKeyIDs(ctx, db); filled != 0 || unreadable != 1 {
			t.Errorf("FillKeyIDs again: %d filled, %d unreadable; want 0 and the same 1", filled, unreadable)
		}
		// A page at a time: the unreadable row (serial 50, first) takes a
		// page of its own, and the pages after it are read.
		if _, err := raw.ExecContext(ctx, `UPDATE certificates SET spki_sha256 = NULL`); err != nil {
			t.Fatal(err)
		}
		if filled, unreadable, _ := ca.FillKeyIDsInBatches(ctx, db, 1); filled != 2 || unreadable != 1 {
			t.Errorf("FillKeyIDs a row at a time: %d filled, %d unreadable; want 2 and 1", filled, unreadable)
		}
	})
}
