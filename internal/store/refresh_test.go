package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// refreshT0 is "now" in the refresh tests.
var refreshT0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// row is a certificate row to set up, with its OCSP response if any.
type row struct {
	issuer    string
	serial    byte
	notAfter  time.Time // zero: three years from refreshT0
	signed    bool      // DER recorded
	revoked   bool
	response  bool // an OCSP response stored
	thisUpd   time.Time
	nextUpd   time.Time
	wantDue   bool // returned by DueOCSPResponses
	wantUnans bool // returned by UnansweredCertificates
}

func putRow(t *testing.T, db *store.DB, r row) store.Certificate {
	t.Helper()
	ctx := t.Context()
	notAfter := r.notAfter
	if notAfter.IsZero() {
		notAfter = refreshT0.AddDate(3, 0, 0)
	}
	c := store.Certificate{IssuerID: r.issuer, Serial: []byte{r.serial}, Profile: "citizen-auth",
		NotBefore: refreshT0.AddDate(-1, 0, 0), NotAfter: notAfter, TBS: []byte{0x30, r.serial}, CreatedAt: refreshT0.AddDate(-1, 0, 0)}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertCertificateIntent(ctx, c); err != nil {
			return err
		}
		if r.signed {
			if err := tx.SetCertificateDER(ctx, c.IssuerID, c.Serial, []byte{0x30, 0x82, r.serial}, c.CreatedAt); err != nil {
				return err
			}
		}
		if r.revoked {
			if err := tx.RevokeCertificate(ctx, c.IssuerID, c.Serial, refreshT0.AddDate(0, 0, -5), 1, refreshT0.AddDate(0, 0, -5)); err != nil {
				return err
			}
		}
		if r.response {
			return tx.PutOCSPResponse(ctx, store.OCSPResponse{IssuerID: c.IssuerID, Serial: c.Serial, DER: []byte{0x30, 0x01, r.serial},
				ThisUpdate: r.thisUpd, NextUpdate: r.nextUpd, UpdatedAt: r.thisUpd})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("set up serial %x: %v", r.serial, err)
	}
	got, err := db.Certificate(ctx, c.IssuerID, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// collect walks a paged query to its end, as the publisher does.
func collect(t *testing.T, limit int, next func(after []byte) ([]store.Certificate, error)) []string {
	t.Helper()
	var out []string
	var after []byte
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the walk does not end")
		}
		page, err := next(after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d rows, limit %d", len(page), limit)
		}
		for _, c := range page {
			out = append(out, fmt.Sprintf("%s/%x", c.IssuerID, c.Serial))
		}
		if len(page) < limit {
			return out
		}
		after = page[len(page)-1].Serial
	}
}

// TestOCSPRefreshQueries: the due and unanswered walks return exactly the
// rows the refresher must sign, each once, in serial order, page by page.
func TestOCSPRefreshQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		putIssuer(t, db, testIssuer("other", "issuing"))
		// Bounds as ocspsign computes them for 4-day responses: due at two
		// days old, or within two days of nextUpdate.
		tuBefore, nuBefore := refreshT0.Add(-48*time.Hour), refreshT0.Add(48*time.Hour)
		old, oldNext := refreshT0.Add(-72*time.Hour), refreshT0.Add(24*time.Hour)
		fresh, freshNext := refreshT0.Add(-time.Hour), refreshT0.Add(95*time.Hour)
		rows := []row{
			{serial: 0x10, signed: true, response: true, thisUpd: old, nextUpd: oldNext, wantDue: true},
			{serial: 0x11, signed: true, response: true, thisUpd: fresh, nextUpd: freshNext},
			// Exactly at the bound is due.
			{serial: 0x12, signed: true, response: true, thisUpd: tuBefore, nextUpd: tuBefore.Add(96 * time.Hour), wantDue: true},
			// Young but short-lived (signed with a 10-hour validity): due
			// by its nextUpdate.
			{serial: 0x13, signed: true, response: true, thisUpd: refreshT0.Add(-5 * time.Hour), nextUpd: refreshT0.Add(5 * time.Hour), wantDue: true},
			{serial: 0x14, signed: true, revoked: true, response: true, thisUpd: old, nextUpd: oldNext, wantDue: true},
			// Expired certificates stay answerable: due or unanswered
			// like the others (a fresh one is not due).
			{serial: 0x15, signed: true, response: true, thisUpd: old, nextUpd: oldNext, notAfter: refreshT0, wantDue: true},
			{serial: 0x16, signed: true, notAfter: refreshT0.Add(-time.Hour), wantUnans: true},
			{serial: 0x1c, signed: true, revoked: true, response: true, thisUpd: old, nextUpd: oldNext, notAfter: refreshT0.AddDate(0, -6, 0), wantDue: true},
			{serial: 0x1d, signed: true, response: true, thisUpd: fresh, nextUpd: freshNext, notAfter: refreshT0.AddDate(0, 0, -1)},
			// An intent recovery revoked is answered; one in flight is not.
			{serial: 0x17, revoked: true, response: true, thisUpd: old, nextUpd: oldNext, wantDue: true},
			{serial: 0x18, revoked: true, wantUnans: true},
			{serial: 0x19},
			// Signed without a response (revoked or not): unanswered.
			{serial: 0x1a, signed: true, wantUnans: true},
			{serial: 0x1b, signed: true, revoked: true, wantUnans: true},
			// Another issuer's rows never appear.
			{issuer: "other", serial: 0x10, signed: true, response: true, thisUpd: old, nextUpd: oldNext},
			{issuer: "other", serial: 0x1a, signed: true},
		}
		// Enough due rows for several pages, and fresh ones between them.
		for i := range 23 {
			rows = append(rows, row{serial: byte(0x40 + 2*i), signed: true, response: true, thisUpd: old, nextUpd: oldNext, wantDue: true},
				row{serial: byte(0x41 + 2*i), signed: true, response: true, thisUpd: fresh, nextUpd: freshNext})
		}
		var wantDue, wantExpired, wantUnans []string
		for _, r := range rows {
			if r.issuer == "" {
				r.issuer = "issuing"
			}
			putRow(t, db, r)
			switch {
			case r.wantDue && !r.notAfter.IsZero() && r.notAfter.Before(refreshT0):
				wantExpired = append(wantExpired, fmt.Sprintf("%s/%x", r.issuer, r.serial))
			case r.wantDue:
				wantDue = append(wantDue, fmt.Sprintf("%s/%x", r.issuer, r.serial))
			}
			if r.wantUnans {
				wantUnans = append(wantUnans, fmt.Sprintf("%s/%x", r.issuer, r.serial))
			}
		}
		slices.Sort(wantDue)
		slices.Sort(wantExpired)
		slices.Sort(wantUnans)

		for _, limit := range []int{1, 5, 500} {
			// The live and the expired are walked apart, live first.
			for _, expired := range []bool{false, true} {
				due := collect(t, limit, func(after []byte) ([]store.Certificate, error) {
					return db.DueOCSPResponses(ctx, store.OCSPDue{IssuerID: "issuing", Expired: expired, Now: refreshT0,
						ThisUpdateBefore: tuBefore, NextUpdateBefore: nuBefore, After: after, Limit: limit})
				})
				if want := map[bool][]string{false: wantDue, true: wantExpired}[expired]; !slices.Equal(due, want) {
					t.Errorf("limit %d, expired %v: due =\n%v\nwant\n%v", limit, expired, due, want)
				}
			}
			unans := collect(t, limit, func(after []byte) ([]store.Certificate, error) {
				return db.UnansweredCertificates(ctx, "issuing", after, limit)
			})
			if !slices.Equal(unans, wantUnans) {
				t.Errorf("limit %d: unanswered = %v, want %v", limit, unans, wantUnans)
			}
		}
		// The rows come back whole, as Certificate reads them.
		page, err := db.DueOCSPResponses(ctx, store.OCSPDue{IssuerID: "issuing", Now: refreshT0,
			ThisUpdateBefore: tuBefore, NextUpdateBefore: nuBefore, Limit: 5})
		if err != nil || len(page) != 5 {
			t.Fatalf("first page: %d rows, %v", len(page), err)
		}
		for _, c := range page {
			want, err := db.Certificate(ctx, "issuing", c.Serial)
			if err != nil || !sameCertificate(c, want) {
				t.Errorf("row %x = %+v, want %+v (%v)", c.Serial, c, want, err)
			}
		}
		if _, err := db.DueOCSPResponses(ctx, store.OCSPDue{IssuerID: "issuing"}); err == nil {
			t.Error("a page size of 0 was accepted")
		}
	})
}

func sameCertificate(a, b store.Certificate) bool {
	return a.IssuerID == b.IssuerID && bytes.Equal(a.Serial, b.Serial) && a.Profile == b.Profile &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter) && bytes.Equal(a.TBS, b.TBS) &&
		bytes.Equal(a.DER, b.DER) && a.Status == b.Status && a.RevokedAt.Equal(b.RevokedAt) && a.Reason == b.Reason &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

// TestPutRefreshedOCSPResponse: a refreshed response is stored only over
// an older one, and only if the certificate is still as it was read.
func TestPutRefreshedOCSPResponse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t1 := refreshT0.Add(-48 * time.Hour)
		response := func(c store.Certificate, thisUpdate time.Time, der byte) store.OCSPResponse {
			return store.OCSPResponse{IssuerID: c.IssuerID, Serial: c.Serial, DER: []byte{0x30, der},
				ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(96 * time.Hour), UpdatedAt: thisUpdate}
		}
		put := func(c store.Certificate, r store.OCSPResponse) (bool, error) {
			var stored bool
			err := db.InTx(ctx, func(tx *store.Tx) error {
				var err error
				stored, err = tx.PutRefreshedOCSPResponse(ctx, c, r)
				return err
			})
			return stored, err
		}
		storedDER := func(c store.Certificate) []byte {
			r, err := db.OCSPResponse(ctx, c.IssuerID, c.Serial)
			if err != nil {
				t.Fatal(err)
			}
			return r.DER
		}

		good := putRow(t, db, row{issuer: "issuing", serial: 0x20, signed: true, response: true, thisUpd: t1, nextUpd: t1.Add(96 * time.Hour)})
		revoked := putRow(t, db, row{issuer: "issuing", serial: 0x21, signed: true, revoked: true, response: true, thisUpd: t1, nextUpd: t1.Add(96 * time.Hour)})
		unanswered := putRow(t, db, row{issuer: "issuing", serial: 0x22, revoked: true})

		for _, tc := range []struct {
			name      string
			cert      store.Certificate
			resp      store.OCSPResponse
			want      bool
			wantBytes []byte
		}{
			{"newer over older", good, response(good, refreshT0, 1), true, []byte{0x30, 1}},
			{"same thisUpdate: kept", good, response(good, refreshT0, 2), false, []byte{0x30, 1}},
			{"older: kept", good, response(good, refreshT0.Add(-time.Hour), 3), false, []byte{0x30, 1}},
			{"revoked, newer", revoked, response(revoked, refreshT0, 4), true, []byte{0x30, 4}},
			{"no response yet", unanswered, response(unanswered, refreshT0, 5), true, []byte{0x30, 5}},
		} {
			stored, err := put(tc.cert, tc.resp)
			if err != nil || stored != tc.want {
				t.Errorf("%s: stored %v, %v; want %v", tc.name, stored, err, tc.want)
			}
			if got := storedDER(tc.cert); !bytes.Equal(got, tc.wantBytes) {
				t.Errorf("%s: stored DER %x, want %x", tc.name, got, tc.wantBytes)
			}
		}

		// Read good, revoked before the write: the revocation's response
		// stays, however new the good one is.
		later := refreshT0.Add(time.Hour)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.RevokeCertificate(ctx, "issuing", good.Serial, later, 1, later); err != nil {
				return err
			}
			return tx.PutOCSPResponse(ctx, response(good, later, 0xee))
		}); err != nil {
			t.Fatal(err)
		}
		if stored, err := put(good, response(good, later.Add(time.Hour), 6)); err != nil || stored {
			t.Errorf("a good response over a revocation: stored %v, %v", stored, err)
		}
		if got := storedDER(good); !bytes.Equal(got, []byte{0x30, 0xee}) {
			t.Errorf("stored DER %x, want the revocation's", got)
		}
		// A revoked row read with another time or reason is stale too.
		for _, stale := range []store.Certificate{
			func() store.Certificate { c := revoked; c.Reason = 4; return c }(),
			func() store.Certificate { c := revoked; c.RevokedAt = c.RevokedAt.Add(time.Second); return c }(),
		} {
			if stored, err := put(stale, response(stale, later.Add(2*time.Hour), 7)); err != nil || stored {
				t.Errorf("stale revoked row (%s, reason %d): stored %v, %v", stale.RevokedAt, stale.Reason, stored, err)
			}
		}

		if _, err := put(store.Certificate{IssuerID: "issuing", Serial: []byte{0x7f}, Status: store.StatusGood},
			store.OCSPResponse{IssuerID: "issuing", Serial: []byte{0x7f}}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown certificate: %v", err)
		}
		if _, err := put(good, response(revoked, later.Add(3*time.Hour), 8)); err == nil {
			t.Error("a response for another serial was accepted")
		}
	})
}

// TestRefreshWaitsForRevocation: a revocation in flight (status changed and
// its response written, not yet committed) when a refreshed good response
// is stored. The refresh waits for it on the certificate's row and then
// leaves the revocation's response in place.
func TestRefreshWaitsForRevocation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t1 := refreshT0.Add(-48 * time.Hour)
		read := putRow(t, db, row{issuer: "issuing", serial: 0x30, signed: true, response: true, thisUpd: t1, nextUpd: t1.Add(96 * time.Hour)})

		revoking, release := make(chan struct{}), make(chan struct{})
		revoked := make(chan error, 1)
		go func() {
			revoked <- db.InTx(context.Background(), func(tx *store.Tx) error {
				if err := tx.RevokeCertificate(ctx, "issuing", read.Serial, refreshT0, 1, refreshT0); err != nil {
					return err
				}
				if err := tx.PutOCSPResponse(ctx, store.OCSPResponse{IssuerID: "issuing", Serial: read.Serial, DER: []byte{0x30, 0xee},
					ThisUpdate: refreshT0, NextUpdate: refreshT0.Add(96 * time.Hour), UpdatedAt: refreshT0}); err != nil {
					return err
				}
				close(revoking)
				<-release
				return nil
			})
		}()
		select {
		case <-revoking:
		case err := <-revoked:
			t.Fatalf("revocation: %v", err)
		}
		type outcome struct {
			stored bool
			err    error
		}
		refreshed := make(chan outcome, 1)
		go func() {
			var stored bool
			err := db.InTx(context.Background(), func(tx *store.Tx) error {
				var err error
				stored, err = tx.PutRefreshedOCSPResponse(ctx, read, store.OCSPResponse{IssuerID: "issuing", Serial: read.Serial,
					DER: []byte{0x30, 0x01}, ThisUpdate: refreshT0.Add(time.Minute), NextUpdate: refreshT0.Add(97 * time.Hour), UpdatedAt: refreshT0.Add(time.Minute)})
				return err
			})
			refreshed <- outcome{stored, err}
		}()
		// Give the refresh time to reach the lock; the outcome must be the
		// same if it has not.
		select {
		case o := <-refreshed:
			t.Fatalf("the refresh finished while the revocation held its row: %+v", o)
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		if err := <-revoked; err != nil {
			t.Fatalf("revocation: %v", err)
		}
		if o := <-refreshed; o.err != nil || o.stored {
			t.Errorf("refresh after the revocation: stored %v, %v", o.stored, o.err)
		}
		r, err := db.OCSPResponse(ctx, "issuing", read.Serial)
		if err != nil || !bytes.Equal(r.DER, []byte{0x30, 0xee}) {
			t.Errorf("stored response %x (%v), want the revocation's", r.DER, err)
		}
	})
}

func TestLatestCRLSummary(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		if _, err := db.LatestCRLSummary(ctx, "issuing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("no CRL yet: %v", err)
		}
		for n := int64(1); n <= 2; n++ {
			c := store.CRL{IssuerID: "issuing", Number: n, DER: []byte{0x30, byte(n)}, ThisUpdate: refreshT0.Add(time.Duration(n) * time.Hour),
				NextUpdate: refreshT0.AddDate(0, 0, 7), CreatedAt: refreshT0.Add(time.Duration(n) * time.Hour)}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.PutCRL(ctx, c) }); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.LatestCRLSummary(ctx, "issuing")
		if err != nil || got.Number != 2 || got.DER != nil || !got.ThisUpdate.Equal(refreshT0.Add(2*time.Hour)) ||
			!got.NextUpdate.Equal(refreshT0.AddDate(0, 0, 7)) || !got.CreatedAt.Equal(refreshT0.Add(2*time.Hour)) {
			t.Errorf("summary = %+v, %v", got, err)
		}
	})
}

// TestHasUnexpiredCertificates: an issuer owes status while a certificate
// it issued (or an intent) is unexpired, counting from its notAfter
// inclusive; its own OCSP signers' and audit keys' certificates do not
// count, nor do other issuers'.
func TestHasUnexpiredCertificates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		putIssuer(t, db, testIssuer("other", "issuing"))
		owes := func(id string, at time.Time) bool {
			t.Helper()
			got, err := db.HasUnexpiredCertificates(ctx, id, at)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if owes("issuing", refreshT0) {
			t.Error("an issuer with no certificate owes status")
		}
		put := func(serial byte, profile string, notAfter time.Time) {
			t.Helper()
			c := store.Certificate{IssuerID: "issuing", Serial: []byte{serial}, Profile: profile, NotBefore: refreshT0.AddDate(-1, 0, 0),
				NotAfter: notAfter, TBS: []byte{0x30, serial}, CreatedAt: refreshT0.AddDate(-1, 0, 0)}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertCertificateIntent(ctx, c) }); err != nil {
				t.Fatal(err)
			}
		}
		put(1, "ocsp-signer", refreshT0.AddDate(0, 2, 0))
		put(2, "audit", refreshT0.AddDate(3, 0, 0))
		put(3, "citizen-auth", refreshT0.AddDate(0, 0, -1))
		if owes("issuing", refreshT0) {
			t.Error("its own signer and audit certificates, and an expired one, make it owe status")
		}
		put(4, "citizen-sign", refreshT0)
		if !owes("issuing", refreshT0) || owes("issuing", refreshT0.Add(time.Second)) || owes("other", refreshT0) {
			t.Error("a certificate valid through refreshT0: owed at it, not after, and by its issuer only")
		}
	})
}
