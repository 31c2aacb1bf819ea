package store_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

func TestCertificateLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)
		intent := store.Certificate{
			IssuerID: "issuing", Serial: []byte{0x4a, 0x01, 0x02}, Profile: "citizen-sign",
			NotBefore: t0, NotAfter: t0.AddDate(3, 0, 0), TBS: []byte{0x30, 0x01}, CreatedAt: t0,
		}
		inTx := func(fn func(*store.Tx) error) error { return db.InTx(ctx, fn) }

		if err := inTx(func(tx *store.Tx) error { return tx.InsertCertificateIntent(ctx, intent) }); err != nil {
			t.Fatal(err)
		}
		// A serial is never reused.
		if err := inTx(func(tx *store.Tx) error { return tx.InsertCertificateIntent(ctx, intent) }); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second intent: %v", err)
		}
		unsigned, err := db.UnsignedCertificates(ctx)
		if err != nil || len(unsigned) != 1 || !bytes.Equal(unsigned[0].Serial, intent.Serial) || unsigned[0].DER != nil {
			t.Fatalf("unsigned = %+v, %v", unsigned, err)
		}

		der := []byte{0x30, 0x82, 0x01}
		if err := inTx(func(tx *store.Tx) error { return tx.SetCertificateDER(ctx, "issuing", intent.Serial, der, t0) }); err != nil {
			t.Fatal(err)
		}
		// Never overwritten; an unknown serial is not found.
		if err := inTx(func(tx *store.Tx) error { return tx.SetCertificateDER(ctx, "issuing", intent.Serial, []byte{1}, t0) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second DER: %v", err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.SetCertificateDER(ctx, "issuing", []byte{9}, der, t0) }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DER for unknown serial: %v", err)
		}
		if unsigned, _ := db.UnsignedCertificates(ctx); len(unsigned) != 0 {
			t.Errorf("still unsigned: %+v", unsigned)
		}

		// Recovery revokes only an intent still without its certificate: one
		// recorded since recovery read it is left good.
		if err := inTx(func(tx *store.Tx) error { return tx.RevokeIntent(ctx, "issuing", intent.Serial, t0, 5, t0) }); !errors.Is(err, store.ErrIntentCompleted) || !errors.Is(err, store.ErrConflict) {
			t.Errorf("revoking a completed intent as unresolved: %v", err)
		}
		if c, err := db.Certificate(ctx, "issuing", intent.Serial); err != nil || c.Status != store.StatusGood {
			t.Fatalf("the completed intent after RevokeIntent: %+v, %v", c, err)
		}

		// An intent resolved by recovery (revoked before its DER arrived) is
		// never completed, nor resolved twice.
		orphan := intent
		orphan.Serial = []byte{0x4b}
		if err := inTx(func(tx *store.Tx) error {
			if err := tx.InsertCertificateIntent(ctx, orphan); err != nil {
				return err
			}
			return tx.RevokeIntent(ctx, "issuing", orphan.Serial, t0, 5, t0)
		}); err != nil {
			t.Fatal(err)
		}
		var twice *store.AlreadyRevokedError
		if err := inTx(func(tx *store.Tx) error { return tx.RevokeIntent(ctx, "issuing", orphan.Serial, t0, 5, t0) }); !errors.As(err, &twice) || twice.Reason != 5 {
			t.Errorf("resolving an intent twice: %v", err)
		}
		err = inTx(func(tx *store.Tx) error { return tx.SetCertificateDER(ctx, "issuing", orphan.Serial, der, t0) })
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "intent was revoked") {
			t.Errorf("completing a revoked intent: %v", err)
		}

		revokedAt := t0.Add(time.Hour)
		if err := inTx(func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", intent.Serial, revokedAt, 1, revokedAt)
		}); err != nil {
			t.Fatal(err)
		}
		err = inTx(func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", intent.Serial, revokedAt.Add(time.Hour), 4, revokedAt)
		})
		var already *store.AlreadyRevokedError
		if !errors.As(err, &already) || !errors.Is(err, store.ErrConflict) || !already.At.Equal(revokedAt) || already.Reason != 1 {
			t.Fatalf("second revocation: %v", err)
		}
		c, err := db.Certificate(ctx, "issuing", intent.Serial)
		if err != nil || c.Status != store.StatusRevoked || !c.RevokedAt.Equal(revokedAt) || c.Reason != 1 || !bytes.Equal(c.DER, der) || !c.NotBefore.Equal(t0) {
			t.Fatalf("certificate = %+v, %v", c, err)
		}
		revoked, err := db.RevokedCertificates(ctx, "issuing", t0)
		if err != nil || len(revoked) != 2 {
			t.Fatalf("revoked = %+v, %v", revoked, err)
		}
		if expired, _ := db.RevokedCertificates(ctx, "issuing", t0.AddDate(4, 0, 0)); len(expired) != 0 {
			t.Errorf("an expired certificate stays on the CRL list: %+v", expired)
		}
		// CRLEntries lists the same, lean.
		entries, err := db.CRLEntries(ctx, "issuing", t0)
		if err != nil || len(entries) != len(revoked) {
			t.Fatalf("CRL entries = %+v, %v", entries, err)
		}
		for i, e := range entries {
			if !bytes.Equal(e.Serial, revoked[i].Serial) || !e.RevokedAt.Equal(revoked[i].RevokedAt) || e.Reason != revoked[i].Reason {
				t.Errorf("CRL entry %d = %+v, row %+v", i, e, revoked[i])
			}
		}
		if expired, _ := db.CRLEntries(ctx, "issuing", t0.AddDate(4, 0, 0)); len(expired) != 0 {
			t.Errorf("an expired certificate stays among the CRL entries: %+v", expired)
		}

		resp := store.OCSPResponse{IssuerID: "issuing", Serial: intent.Serial, DER: []byte{1}, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 4), UpdatedAt: t0}
		if err := inTx(func(tx *store.Tx) error { return tx.PutOCSPResponse(ctx, resp) }); err != nil {
			t.Fatal(err)
		}
		resp.DER, resp.UpdatedAt = []byte{2}, revokedAt
		if err := inTx(func(tx *store.Tx) error { return tx.PutOCSPResponse(ctx, resp) }); err != nil {
			t.Fatal(err)
		}
		got, err := db.OCSPResponse(ctx, "issuing", intent.Serial)
		if err != nil || !bytes.Equal(got.DER, []byte{2}) || !got.UpdatedAt.Equal(revokedAt) {
			t.Fatalf("OCSP response = %+v, %v", got, err)
		}

		crl := store.CRL{IssuerID: "issuing", Number: 7, DER: []byte{3}, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 7), CreatedAt: t0}
		if err := inTx(func(tx *store.Tx) error { return tx.PutCRL(ctx, crl) }); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int64{7, 6} {
			crl.Number = n
			if err := inTx(func(tx *store.Tx) error { return tx.PutCRL(ctx, crl) }); !errors.Is(err, store.ErrConflict) {
				t.Errorf("CRL number %d after 7: %v", n, err)
			}
		}
		latest, err := db.LatestCRL(ctx, "issuing")
		if err != nil || latest.Number != 7 {
			t.Fatalf("latest CRL = %+v, %v", latest, err)
		}
		if _, err := db.LatestCRL(ctx, "root"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CRL of an issuer without one: %v", err)
		}
	})
}

// TestBlockedKeys: a blocked key is found with the certificate that blocked
// it; blocking it again keeps the first record; another key is not found.
func TestBlockedKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		key := bytes.Repeat([]byte{0xab}, 32)
		at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		for i, serial := range [][]byte{{0x01}, {0x02}} {
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.BlockKey(ctx, key, "issuing", serial, at.Add(time.Duration(i)*time.Hour))
			}); err != nil {
				t.Fatal(err)
			}
		}
		b, err := db.KeyBlocked(ctx, key)
		if err != nil || b.IssuerID != "issuing" || !bytes.Equal(b.Serial, []byte{0x01}) || !b.BlockedAt.Equal(at) {
			t.Errorf("KeyBlocked = %+v, %v; want the first record", b, err)
		}
		other := bytes.Repeat([]byte{0xcd}, 32)
		if _, err := db.KeyBlocked(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an unblocked key: %v, want ErrNotFound", err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			got, err := tx.BlockedKeys(ctx, [][]byte{other, key})
			if err != nil {
				return err
			}
			if len(got) != 1 || !bytes.Equal(got[string(key)].Serial, []byte{0x01}) {
				t.Errorf("BlockedKeys = %+v, want the blocked key only", got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.BlockKey(ctx, []byte{1}, "issuing", []byte{3}, at) }); err == nil {
			t.Error("a key hash that is not 32 bytes was stored")
		}
	})
}

// TestOCSPUpdatedAtNeverGoesBack: a response written over a newer one (a
// revocation's answer, signed before its transaction, written after a
// refresh of the same certificate) still gets a later updated_at than the
// row it replaces, by each of the three writes, so that responders, which
// keep an answer only over an older one, take it.
func TestOCSPUpdatedAtNeverGoesBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		c := store.Certificate{IssuerID: "issuing", Serial: []byte{0x5c}, Profile: "citizen-sign", NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0),
			TBS: []byte{0x30, 0x01}, CreatedAt: t0, Status: store.StatusGood}
		resp := func(this, updated time.Time, der byte) store.OCSPResponse {
			return store.OCSPResponse{IssuerID: "issuing", Serial: c.Serial, DER: []byte{0x30, der}, ThisUpdate: this, NextUpdate: this.Add(96 * time.Hour), UpdatedAt: updated}
		}
		stored := func() store.OCSPResponse {
			t.Helper()
			r, err := db.OCSPResponse(ctx, "issuing", c.Serial)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.InsertCertificateIntent(ctx, c); err != nil {
				return err
			}
			other := c
			other.Serial = []byte{0x5d}
			if err := tx.InsertCertificateIntent(ctx, other); err != nil {
				return err
			}
			return tx.PutOCSPResponse(ctx, resp(t0, t0.Add(2*time.Second), 1))
		}); err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			name  string
			write func(tx *store.Tx, r store.OCSPResponse) error
		}{
			{"PutOCSPResponse", func(tx *store.Tx, r store.OCSPResponse) error { return tx.PutOCSPResponse(ctx, r) }},
			{"PutOCSPResponses", func(tx *store.Tx, r store.OCSPResponse) error {
				other := r
				other.Serial = []byte{0x5d} // two rows: the multi-row statement
				return tx.PutOCSPResponses(ctx, []store.OCSPResponse{r, other})
			}},
			{"PutRefreshedOCSPResponse", func(tx *store.Tx, r store.OCSPResponse) error {
				ok, err := tx.PutRefreshedOCSPResponse(ctx, c, r)
				if err == nil && !ok {
					err = errors.New("not written")
				}
				return err
			}},
		} {
			before := stored()
			next := before.ThisUpdate.Add(time.Minute) // the refresh's guard wants a later thisUpdate
			if err := db.InTx(ctx, func(tx *store.Tx) error { return w.write(tx, resp(next, t0, byte(len(w.name)))) }); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			if after := stored(); !after.UpdatedAt.After(before.UpdatedAt) || after.DER[1] != byte(len(w.name)) {
				t.Errorf("%s of a response signed earlier: updated_at %s after %s, want later", w.name, after.UpdatedAt, before.UpdatedAt)
			}
		}
	})
}

// TestPruneCRLs: the CRLs a newer one replaced whose nextUpdate has passed
// are deleted, oldest first, at most limit at a time; the latest stays,
// expired or not, and numbers must still pass it; another issuer's are
// not touched.
func TestPruneCRLs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		putIssuer(t, db, testIssuer("other", "issuing"))
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		put := func(issuer string, n int64, nextUpdate time.Time) {
			t.Helper()
			c := store.CRL{IssuerID: issuer, Number: n, DER: []byte{byte(n)}, ThisUpdate: nextUpdate.AddDate(0, 0, -7), NextUpdate: nextUpdate, CreatedAt: t0}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.PutCRL(ctx, c) }); err != nil {
				t.Fatal(err)
			}
		}
		// #10..#14 expire a day apart; #15, the latest, expires first.
		for n := int64(10); n < 15; n++ {
			put("issuing", n, t0.AddDate(0, 0, int(n-10)))
		}
		put("issuing", 15, t0.Add(-time.Hour))
		put("other", 1, t0.Add(-time.Hour))
		put("other", 2, t0.Add(-time.Hour))
		prune := func(before time.Time, limit int) store.PrunedCRLs {
			t.Helper()
			var p store.PrunedCRLs
			if err := db.InTx(ctx, func(tx *store.Tx) (err error) {
				p, err = tx.PruneCRLs(ctx, "issuing", before, limit)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return p
		}
		count := func(issuer string) int64 {
			t.Helper()
			n, err := db.CRLCount(ctx, issuer)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Before t0+2.5d: #10, #11 and #12 have expired.
		if p := prune(t0.Add(60*time.Hour), 2); p != (store.PrunedCRLs{Count: 2, First: 10, Last: 11}) {
			t.Errorf("first prune, limit 2: %+v; want #10..#11", p)
		}
		if p := prune(t0.Add(60*time.Hour), 2); p != (store.PrunedCRLs{Count: 1, First: 12, Last: 12}) {
			t.Errorf("second prune: %+v; want #12", p)
		}
		if p := prune(t0.Add(60*time.Hour), 2); p != (store.PrunedCRLs{}) {
			t.Errorf("nothing more expired: %+v", p)
		}
		// Everything expired: all but the latest go.
		if p := prune(t0.AddDate(1, 0, 0), 100); p != (store.PrunedCRLs{Count: 2, First: 13, Last: 14}) {
			t.Errorf("all expired: %+v; want #13..#14", p)
		}
		if latest, err := db.LatestCRL(ctx, "issuing"); err != nil || latest.Number != 15 || count("issuing") != 1 {
			t.Errorf("after pruning: latest %+v (%v), %d stored; want #15 alone", latest, err, count("issuing"))
		}
		put("issuing", 16, t0.AddDate(0, 0, 7))
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.PutCRL(ctx, store.CRL{IssuerID: "issuing", Number: 12, DER: []byte{1}, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 7), CreatedAt: t0})
		}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a pruned number again: %v", err)
		}
		if n := count("other"); n != 2 {
			t.Errorf("another issuer's CRLs: %d left, want 2", n)
		}
	})
}

// TestCertificateKeys: both intent writes record the certified key's hash
// (SPKISHA256); CertificatesOfKey finds a key's certificates of subjects
// its compromise has still to revoke (signed or intents, revoked for
// another reason), newest first, and no ceremony certificate, expired
// one, one revoked for keyCompromise or other key's; UnkeyedCertificates
// pages through the rows without one, in (issuer, serial) order across
// issuers, and SetCertificateKey fills one without overwriting another.
func TestCertificateKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		putIssuer(t, db, testIssuer("issuing2", "issuing"))
		t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.PutSubject(ctx, store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{}`), CreatedAt: t0})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		k1, k2 := sha256.Sum256([]byte("key 1")), sha256.Sum256([]byte("key 2"))
		cert := func(issuer string, serial byte, subject string, key []byte, at int) store.Certificate {
			return store.Certificate{IssuerID: issuer, Serial: []byte{0x40, serial}, SubjectID: subject, Profile: "citizen-auth",
				NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30, serial}, CreatedAt: t0.Add(time.Duration(at) * time.Second), SPKISHA256: key}
		}
		batch := []store.Certificate{
			cert("issuing", 1, "s1", k1[:], 1),
			cert("issuing", 2, "s1", k1[:], 3),
			cert("issuing", 3, "", k1[:], 2), // a ceremony's
			cert("issuing", 4, "s1", k2[:], 4),
			cert("issuing2", 1, "s1", nil, 5),
			cert("issuing", 5, "s1", k1[:], 6), // left unsigned
			cert("issuing", 7, "s1", k1[:], 8), // revoked for keyCompromise
			cert("issuing", 8, "s1", k1[:], 9), // revoked as superseded
			cert("issuing", 9, "s1", k1[:], 10),
		}
		batch[8].NotAfter = t0.Add(time.Hour) // expired at now, below
		now := t0.Add(2 * time.Hour)
		one := cert("issuing", 6, "s1", nil, 7)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.InsertCertificateIntents(ctx, batch); err != nil {
				return err
			}
			if err := tx.InsertCertificateIntent(ctx, one); err != nil {
				return err
			}
			for _, c := range append(append(batch[:5:5], batch[6:]...), one) {
				if err := tx.SetCertificateDER(ctx, c.IssuerID, c.Serial, []byte{0x30, 0x01, c.Serial[1]}, t0); err != nil {
					return err
				}
			}
			if err := tx.RevokeCertificate(ctx, "issuing", batch[6].Serial, t0, 1, t0); err != nil {
				return err
			}
			return tx.RevokeCertificate(ctx, "issuing", batch[7].Serial, t0, 4, t0)
		}); err != nil {
			t.Fatal(err)
		}
		if c, err := db.Certificate(ctx, "issuing", []byte{0x40, 4}); err != nil || !bytes.Equal(c.SPKISHA256, k2[:]) {
			t.Errorf("a batch intent's key: %x, %v", c.SPKISHA256, err)
		}
		serials := func(cs []store.Certificate, err error) []string {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range cs {
				out = append(out, fmt.Sprintf("%s/%x", c.IssuerID, c.Serial))
			}
			return out
		}
		if got, want := serials(db.CertificatesOfKey(ctx, k1[:], now, 10)), []string{"issuing/4008", "issuing/4005", "issuing/4002", "issuing/4001"}; !slices.Equal(got, want) {
			t.Errorf("CertificatesOfKey: %v, want %v", got, want)
		}
		if got, want := serials(db.CertificatesOfKey(ctx, k1[:], t0, 10)), []string{"issuing/4009", "issuing/4008", "issuing/4005", "issuing/4002", "issuing/4001"}; !slices.Equal(got, want) {
			t.Errorf("CertificatesOfKey before one expired: %v, want %v", got, want)
		}
		if got, want := serials(db.CertificatesOfKey(ctx, k1[:], now, 1)), []string{"issuing/4008"}; !slices.Equal(got, want) {
			t.Errorf("CertificatesOfKey, limit 1: %v, want %v", got, want)
		}
		if got, want := serials(db.UnkeyedCertificates(ctx, "", nil, 10)), []string{"issuing/4006", "issuing2/4001"}; !slices.Equal(got, want) {
			t.Errorf("UnkeyedCertificates: %v, want %v", got, want)
		}
		if got, want := serials(db.UnkeyedCertificates(ctx, "issuing", []byte{0x40, 6}, 10)), []string{"issuing2/4001"}; !slices.Equal(got, want) {
			t.Errorf("UnkeyedCertificates after issuing/4006: %v, want %v", got, want)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.SetCertificateKey(ctx, "issuing2", []byte{0x40, 1}, k1[:]); err != nil {
				return err
			}
			return tx.SetCertificateKey(ctx, "issuing", []byte{0x40, 4}, k1[:]) // has k2: kept
		}); err != nil {
			t.Fatal(err)
		}
		if got, want := serials(db.CertificatesOfKey(ctx, k1[:], now, 10)), []string{"issuing/4008", "issuing/4005", "issuing2/4001", "issuing/4002", "issuing/4001"}; !slices.Equal(got, want) {
			t.Errorf("CertificatesOfKey after SetCertificateKey: %v, want %v", got, want)
		}
		if got := serials(db.UnkeyedCertificates(ctx, "", nil, 10)); !slices.Equal(got, []string{"issuing/4006"}) {
			t.Errorf("UnkeyedCertificates after SetCertificateKey: %v", got)
		}
	})
}

// TestListBlockedKeys pages through the blocked keys in hash order.
func TestListBlockedKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		var hashes [][]byte
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			for i := range 3 {
				h := sha256.Sum256([]byte{byte(i)})
				hashes = append(hashes, h[:])
				if err := tx.BlockKey(ctx, h[:], "issuing", []byte{0x40, byte(i)}, t0); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(hashes, bytes.Compare)
		first, err := db.ListBlockedKeys(ctx, nil, 2)
		if err != nil || len(first) != 2 || !bytes.Equal(first[0].SPKISHA256, hashes[0]) || !bytes.Equal(first[1].SPKISHA256, hashes[1]) {
			t.Fatalf("the first page: %+v, %v", first, err)
		}
		rest, err := db.ListBlockedKeys(ctx, first[1].SPKISHA256, 2)
		if err != nil || len(rest) != 1 || !bytes.Equal(rest[0].SPKISHA256, hashes[2]) || rest[0].IssuerID != "issuing" || !rest[0].BlockedAt.Equal(t0) {
			t.Fatalf("the second page: %+v, %v", rest, err)
		}
	})
}
