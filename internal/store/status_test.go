package store_test

import (
	"bytes"
	"database/sql"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestOCSPResponsesAfter: paging by the (updated_at, issuer, serial)
// cursor returns every response once, in order, also when many share an
// updated_at, and a re-signed response moves to the end.
func TestOCSPResponsesAfter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		if latest, err := db.LatestOCSPUpdate(ctx); err != nil || !latest.IsZero() {
			t.Fatalf("empty table: latest %s, %v", latest, err)
		}
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		put := func(serial byte, at time.Time) {
			t.Helper()
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := db.Certificate(ctx, "issuing", []byte{serial}); err != nil {
					if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: []byte{serial}, Profile: "citizen-auth",
						NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30}, CreatedAt: t0}); err != nil {
						return err
					}
				}
				return tx.PutOCSPResponse(ctx, store.OCSPResponse{IssuerID: "issuing", Serial: []byte{serial}, DER: []byte{0x30, serial},
					ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 4), UpdatedAt: at})
			}); err != nil {
				t.Fatal(err)
			}
		}
		for s := byte(10); s > 0; s-- { // inserted out of order, one updated_at
			put(s, t0)
		}
		put(0x20, t0.Add(time.Microsecond))
		put(3, t0.Add(time.Second)) // re-signed: now last
		var got []byte
		var c store.OCSPCursor
		for {
			page, err := db.OCSPResponsesAfter(ctx, c, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				got = append(got, r.Serial[0])
				c = r.After()
			}
			if len(page) < 3 {
				break
			}
		}
		want := []byte{1, 2, 4, 5, 6, 7, 8, 9, 10, 0x20, 3}
		if !bytes.Equal(got, want) {
			t.Errorf("paged %v, want %v", got, want)
		}
		if latest, err := db.LatestOCSPUpdate(ctx); err != nil || !latest.Equal(t0.Add(time.Second)) {
			t.Errorf("latest %s, %v", latest, err)
		}
	})
}
