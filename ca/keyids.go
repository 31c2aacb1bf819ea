package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/sanadpki/sanad/internal/store"
)

// KeyID is the first of KeyIDs: the hash a certificate records of its key
// (store.Certificate.SPKISHA256) and BlockKey blocks the key under.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	ids, err := KeyIDs(pub)
	if err != nil {
		return nil, err
	}
	return ids[0], nil
}

// StoredKeyID is the KeyID of the key a stored certificate certifies
// (CertifiedKey): from its DER, or an intent's TBS.
func StoredKeyID(c store.Certificate) ([]byte, error) {
	pub, err := CertifiedKey(c)
	if err != nil {
		return nil, fmt.Errorf("certificate %X: %w", c.Serial, err)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("certificate %X: %w", c.Serial, err)
	}
	return id, nil
}

// fillBatch is how many certificates FillKeyIDs reads and updates at a
// time, each batch one transaction.
const fillBatch = 500

// FillKeyIDs records the KeyID of every certificate stored before
// certificates had one (migration 00018), so that a key reported
// compromised finds them (store.DB.CertificatesOfKey). It pages through
// them in (issuer, serial) order, a transaction a batch, until none is
// left or ctx ends, and returns how many it filled and how many it could
// not (a stored TBS that does not parse, which issuance never writes: it
// stores only what it linted; those stay as they are, and are named in
// the error). Idempotent: rows that have a key keep it, and a node that
// fills alongside another writes the same hashes.
func FillKeyIDs(ctx context.Context, db *store.DB) (filled, unreadable int, _ error) {
	return fillKeyIDs(ctx, db, fillBatch)
}

// fillKeyIDs is FillKeyIDs in batches of batch certificates.
func fillKeyIDs(ctx context.Context, db *store.DB, batch int) (filled, unreadable int, _ error) {
	var (
		afterIssuer string
		afterSerial []byte
		first       error
	)
	// done reports what was filled, with the rows that could not be and
	// err, if any.
	done := func(err error) (int, int, error) {
		if first != nil {
			err = errors.Join(fmt.Errorf("%d certificates have no readable key (the first: %w)", unreadable, first), err)
		}
		return filled, unreadable, err
	}
	for {
		cs, err := db.UnkeyedCertificates(ctx, afterIssuer, afterSerial, batch)
		if err != nil || len(cs) == 0 {
			return done(err)
		}
		last := cs[len(cs)-1]
		afterIssuer, afterSerial = last.IssuerID, last.Serial
		ids := make([][]byte, len(cs))
		read := 0
		for i, c := range cs {
			if ids[i], err = StoredKeyID(c); err == nil {
				read++
			} else {
				unreadable++
				if first == nil {
					first = fmt.Errorf("%s: %w", SerialObject(c.IssuerID, c.Serial), err)
				}
			}
		}
		err = db.InTx(ctx, func(tx *store.Tx) error {
			for i, c := range cs {
				if ids[i] == nil {
					continue
				}
				if err := tx.SetCertificateKey(ctx, c.IssuerID, c.Serial, ids[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return done(fmt.Errorf("record the keys of stored certificates: %w", err))
		}
		filled += read
	}
}

// RecordCertified records cert, which the issuing CA issuerID signed
// outside issuance (at a ceremony: an OCSP signer's, a subordinate CA's),
// among that CA's certificates, signed, with profile and its key's KeyID.
func RecordCertified(ctx context.Context, tx *store.Tx, issuerID, profile string, cert *x509.Certificate, now time.Time) error {
	keyID, err := KeyID(cert.PublicKey)
	if err != nil {
		return fmt.Errorf("certificate %X: %w", cert.SerialNumber, err)
	}
	serial := cert.SerialNumber.Bytes()
	if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: issuerID, Serial: serial, Profile: profile,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, TBS: cert.RawTBSCertificate, Status: store.StatusGood,
		CreatedAt: now, SPKISHA256: keyID}); err != nil {
		return err
	}
	return tx.SetCertificateDER(ctx, issuerID, serial, cert.Raw, now)
}
