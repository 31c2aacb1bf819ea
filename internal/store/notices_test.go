package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestRevocationNotices: which revocations are still to be told, and the
// claim that keeps two RA nodes from both telling one.
func TestRevocationNotices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		cert := func(serial byte, enrollment string) store.Certificate {
			return store.Certificate{IssuerID: "issuing", Serial: []byte{serial}, EnrollmentID: enrollment, Profile: "citizen-sign",
				NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30, serial}, CreatedAt: t0, Status: store.StatusGood}
		}
		told := cert(0x11, "e1")
		certs := []store.Certificate{
			told,
			cert(0x12, "e1"), // an intent recovery revoked: never signed (below), never delivered
			cert(0x13, ""),   // a ceremony or officer certificate: no enrollment
			cert(0x14, "e1"), // revoked before the sweep's window
			cert(0x15, "e1"),
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.PutSubject(ctx, store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{}`), CreatedAt: t0}); err != nil {
				return err
			}
			if err := tx.InsertEnrollment(ctx, store.Enrollment{ID: "e1", SubjectID: "s1", Profile: "citizen-sign", CSR: []byte{0x30},
				State: store.StateIssued, Proofing: []byte(`{}`), RequestHash: []byte{1}, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
			var signed []store.SignedCertificate
			for _, c := range certs {
				if c.EnrollmentID != "" {
					c.SubjectID = "s1"
				}
				if err := tx.InsertCertificateIntent(ctx, c); err != nil {
					return err
				}
				if c.Serial[0] != 0x12 {
					signed = append(signed, store.SignedCertificate{IssuerID: "issuing", Serial: c.Serial, DER: []byte{0x30, 0x00}, At: t0})
				}
			}
			return tx.SetCertificateDERs(ctx, signed)
		}); err != nil {
			t.Fatal(err)
		}
		revoke := func(serial byte, reason int, at time.Time) {
			t.Helper()
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.RevokeCertificate(ctx, "issuing", []byte{serial}, at, reason, at)
			}); err != nil {
				t.Fatal(err)
			}
		}
		revoke(0x14, 4, t0.Add(time.Minute))
		since := t0.Add(time.Hour)
		for _, s := range []byte{0x11, 0x12, 0x13} {
			revoke(s, 4, since.Add(time.Minute))
		}
		now := since.Add(time.Hour)
		stale := now.Add(-5 * time.Minute)
		toNotice := func(stale time.Time) []byte {
			t.Helper()
			cs, err := db.RevocationsToNotice(ctx, "issuing", since, stale, 10)
			if err != nil {
				t.Fatal(err)
			}
			var serials []byte
			for _, c := range cs {
				serials = append(serials, c.Serial...)
			}
			return serials
		}
		if got := toNotice(stale); string(got) != "\x11" {
			t.Fatalf("to notice: %x, want 11 alone", got)
		}

		claim := func(now time.Time, reason int) bool {
			t.Helper()
			ok, err := db.ClaimRevocationNotice(ctx, "issuing", told.Serial, reason, now, now.Add(-5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		notice := func() (int, string) {
			t.Helper()
			reason, outcome, err := db.RevocationNotice(ctx, "issuing", told.Serial)
			if err != nil {
				t.Fatal(err)
			}
			return reason, outcome
		}
		// Two nodes at once: one claim.
		var wg sync.WaitGroup
		var won atomic.Int32
		for range 4 {
			wg.Go(func() {
				if ok, err := db.ClaimRevocationNotice(ctx, "issuing", told.Serial, 4, now, stale); err != nil {
					t.Error(err)
				} else if ok {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d of 4 concurrent claims won, want 1", won.Load())
		}
		if claim(now.Add(time.Minute), 4) {
			t.Error("a second node claimed a notice claimed a minute before")
		}
		if got := toNotice(stale); len(got) != 0 {
			t.Errorf("a freshly claimed notice is still to notice: %x", got)
		}
		if reason, outcome := notice(); reason != 4 || outcome != "" {
			t.Errorf("claimed notice: reason %d, %q; want 4, \"\"", reason, outcome)
		}
		unsent := func() int64 {
			t.Helper()
			n, err := db.UnsentRevocationNotices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := unsent(); n != 1 {
			t.Errorf("unsent notices while claimed: %d, want 1", n)
		}
		// The node stopped: after five minutes the notice is to notice
		// again, and another node takes it over; the first can no longer end it.
		later := now.Add(6 * time.Minute)
		if got := toNotice(later.Add(-5 * time.Minute)); string(got) != "\x11" {
			t.Errorf("a stale claim: to notice %x, want 11", got)
		}
		if !claim(later, 4) {
			t.Fatal("a stale claim was not taken over")
		}
		end := func(claimedAt time.Time, reason int) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndRevocationNotice(ctx, "issuing", told.Serial, reason, claimedAt, store.NoticeSent, later)
			})
		}
		if err := end(now, 4); !errors.Is(err, store.ErrConflict) {
			t.Errorf("ending a claim taken over: %v, want ErrConflict", err)
		}
		if err := end(later, 4); err != nil {
			t.Fatal(err)
		}
		if reason, outcome := notice(); reason != 4 || outcome != store.NoticeSent || unsent() != 0 {
			t.Errorf("ended notice: reason %d, %q, %d unsent; want 4, sent, 0", reason, outcome, unsent())
		}
		if claim(later.Add(time.Hour), 4) {
			t.Error("an ended notice was claimed again")
		}
		much := later.Add(time.Hour)
		if got := toNotice(much.Add(-5 * time.Minute)); len(got) != 0 {
			t.Errorf("a told revocation is still to notice: %x", got)
		}

		// A reason raised to keyCompromise is news: told again.
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.RaiseRevocationReason(ctx, "issuing", told.Serial, 4, much)
		}); err != nil {
			t.Fatal(err)
		}
		if got := toNotice(much.Add(-5 * time.Minute)); string(got) != "\x11" {
			t.Errorf("after the raise: to notice %x, want 11", got)
		}
		if claim(much, 4) {
			t.Error("a notice of the reason before the raise was claimed")
		}
		if !claim(much, 1) {
			t.Fatal("the raised reason's notice was not claimed")
		}
		if reason, outcome := notice(); reason != 1 || outcome != "" {
			t.Errorf("the raised reason's claim: reason %d, %q; want 1, \"\"", reason, outcome)
		}
		// A claim that never ended is tried again however old, long after
		// the revocation left the sweep's window, but after the notices
		// never tried: 0x15, revoked later, comes first.
		days := much.Add(72 * time.Hour)
		revoke(0x15, 4, days.Add(-time.Hour))
		if got, err := db.RevocationsToNotice(ctx, "issuing", days.Add(-24*time.Hour), days.Add(-5*time.Minute), 10); err != nil || len(got) != 2 ||
			got[0].Serial[0] != 0x15 || got[1].Serial[0] != 0x11 || got[1].Reason != 1 {
			t.Errorf("a new notice and a claim three days stale: to notice %+v, %v; want 15, then 11 (reason 1)", got, err)
		}
	})
}

// TestExpiryNotices: which certificates are to be reminded of their
// expiry, soonest first, and the claim that keeps two RA nodes from both
// reminding.
func TestExpiryNotices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		horizon, stale := now.AddDate(0, 0, 30), now.Add(-5*time.Minute)
		certs := map[byte]time.Time{
			0x21: now.AddDate(0, 0, 20), // due
			0x22: now.AddDate(0, 0, 40), // not yet
			0x23: now.Add(-time.Hour),   // expired
			0x24: now.AddDate(0, 0, 10), // revoked below
			0x25: now.AddDate(0, 0, 10), // never signed
			0x26: now.AddDate(0, 0, 5),  // due, sooner
			0x27: now.AddDate(0, 0, 25), // due, later
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.PutSubject(ctx, store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{}`), CreatedAt: now}); err != nil {
				return err
			}
			if err := tx.InsertEnrollment(ctx, store.Enrollment{ID: "e1", SubjectID: "s1", Profile: "citizen-sign", CSR: []byte{0x30},
				State: store.StateIssued, Proofing: []byte(`{}`), RequestHash: []byte{1}, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			var signed []store.SignedCertificate
			for serial, notAfter := range certs {
				if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: []byte{serial}, SubjectID: "s1", EnrollmentID: "e1",
					Profile: "citizen-sign", NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter, TBS: []byte{0x30, serial}, CreatedAt: now, Status: store.StatusGood}); err != nil {
					return err
				}
				if serial != 0x25 {
					signed = append(signed, store.SignedCertificate{IssuerID: "issuing", Serial: []byte{serial}, DER: []byte{0x30, 0x00}, At: now})
				}
			}
			if err := tx.SetCertificateDERs(ctx, signed); err != nil {
				return err
			}
			return tx.RevokeCertificate(ctx, "issuing", []byte{0x24}, now, 4, now)
		}); err != nil {
			t.Fatal(err)
		}
		due := func(stale time.Time) string {
			t.Helper()
			cs, err := db.ExpiringToNotice(ctx, "issuing", now, horizon, stale, 10)
			if err != nil {
				t.Fatal(err)
			}
			var serials []byte
			for _, c := range cs {
				serials = append(serials, c.Serial...)
			}
			return fmt.Sprintf("%x", serials)
		}
		if got := due(stale); got != "262127" {
			t.Fatalf("due: %s, want 26, 21, 27: soonest first", got)
		}
		claim := func(serial byte, at time.Time) bool {
			t.Helper()
			ok, err := db.ClaimExpiryNotice(ctx, "issuing", []byte{serial}, at, at.Add(-5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !claim(0x21, now) || claim(0x21, now.Add(time.Minute)) {
			t.Error("a reminder was not claimed once, then refused to a second node")
		}
		if claim(0x24, now) {
			t.Error("a revoked certificate's reminder was claimed")
		}
		if got := due(stale); got != "2627" {
			t.Errorf("due with 21 claimed: %s, want 2627", got)
		}
		later := now.Add(6 * time.Minute)
		if got := due(later.Add(-5 * time.Minute)); got != "262721" {
			t.Errorf("due with 21's claim stale: %s, want 26, 27 (never tried), then 21", got)
		}
		if !claim(0x21, later) {
			t.Fatal("a stale claim was not taken over")
		}
		end := func(claimedAt time.Time) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndExpiryNotice(ctx, "issuing", []byte{0x21}, claimedAt, store.NoticeRenewed, later)
			})
		}
		if err := end(now); !errors.Is(err, store.ErrConflict) {
			t.Errorf("ending a claim taken over: %v, want ErrConflict", err)
		}
		if err := end(later); err != nil {
			t.Fatal(err)
		}
		if got, err := db.ExpiryNotice(ctx, "issuing", []byte{0x21}); err != nil || got != store.NoticeRenewed {
			t.Errorf("ended reminder: %q, %v; want renewed", got, err)
		}
		if got := due(later.Add(time.Hour)); got != "2627" || claim(0x21, later.Add(time.Hour)) {
			t.Errorf("after the reminder ended: due %s, or claimed again", got)
		}
	})
}

// TestOutcomeNotices: an outcome notice is recorded with the enrollment's
// end, listed until it is sent (never tried first, then stale claims, the
// oldest claim first), claimed by one node at a time, and ended only by the
// claim that holds it.
func TestOutcomeNotices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		ids := []string{"e1", "e2", "e3", "e4"}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.PutSubject(ctx, store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{}`), CreatedAt: t0}); err != nil {
				return err
			}
			for _, id := range ids {
				if err := tx.InsertEnrollment(ctx, store.Enrollment{ID: id, SubjectID: "s1", Profile: "citizen-sign", CSR: []byte{0x30},
					State: store.StatePendingApproval, Proofing: []byte(`{}`), RequestHash: []byte{1}, CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		add := func(n store.OutcomeNotice) error {
			return db.InTx(ctx, func(tx *store.Tx) error { return tx.AddOutcomeNotice(ctx, n) })
		}
		// e2 ended first, then e1 (issued), then e3.
		for _, n := range []store.OutcomeNotice{
			{EnrollmentID: "e2", Event: store.StateRejected, CreatedAt: t0},
			{EnrollmentID: "e1", Event: store.StateIssued, Serial: []byte{0x0a, 0x0b}, CreatedAt: t0.Add(time.Minute)},
			{EnrollmentID: "e3", Event: store.StateExpired, CreatedAt: t0.Add(2 * time.Minute)},
		} {
			if err := add(n); err != nil {
				t.Fatal(err)
			}
		}
		// An enrollment ends once: a second notice is ignored.
		if err := add(store.OutcomeNotice{EnrollmentID: "e2", Event: store.StateFailed, CreatedAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if n, err := db.OutcomeNoticeOf(ctx, "e2"); err != nil || n.Event != store.StateRejected || n.Claimed || n.Outcome != "" || !n.CreatedAt.Equal(t0) {
			t.Errorf("e2's notice after a second one: %+v, %v", n, err)
		}
		// The table's checks: an issued notice names its serial, no other
		// does, and only the four ends are told.
		for _, bad := range []store.OutcomeNotice{
			{EnrollmentID: "e4", Event: store.StateIssued, CreatedAt: t0},
			{EnrollmentID: "e4", Event: store.StateRejected, Serial: []byte{1}, CreatedAt: t0},
			{EnrollmentID: "e4", Event: store.StateApproved, CreatedAt: t0},
			{EnrollmentID: "e9", Event: store.StateRejected, CreatedAt: t0}, // no such enrollment
		} {
			if err := add(bad); err == nil {
				t.Errorf("notice %+v was recorded", bad)
			}
		}
		if _, err := db.OutcomeNoticeOf(ctx, "e4"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("notice of an enrollment that has none: %v", err)
		}
		due := func(at time.Time, want ...string) {
			t.Helper()
			got, err := db.OutcomeNoticesToSend(ctx, at.Add(-5*time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range got {
				names = append(names, n.EnrollmentID)
			}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("due at %s: %v, want %v", at.Format("15:04"), names, want)
			}
		}
		due(t0, "e2", "e1", "e3")
		got, err := db.OutcomeNoticesToSend(ctx, t0, 10)
		if err != nil || len(got) != 3 || got[1].Event != store.StateIssued || string(got[1].Serial) != "\x0a\x0b" || got[0].Serial != nil {
			t.Errorf("listed notices: %+v, %v", got, err)
		}

		claim := func(id string, at time.Time) bool {
			t.Helper()
			ok, err := db.ClaimOutcomeNotice(ctx, id, at, at.Add(-5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		// Four nodes claim e2 at once: one wins.
		var won atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if claim("e2", t0.Add(10*time.Minute)) {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Errorf("%d of 4 concurrent claims won, want 1", won.Load())
		}
		t1 := t0.Add(11 * time.Minute)
		if !claim("e1", t1) {
			t.Fatal("e1 not claimed")
		}
		if claim("e1", t1.Add(time.Minute)) {
			t.Error("a claim a minute old was taken over")
		}
		due(t1.Add(time.Minute), "e3") // the claimed ones are not due until stale
		// Stale: never tried first, then the oldest claim first.
		due(t1.Add(10*time.Minute), "e3", "e2", "e1")
		t2 := t1.Add(10 * time.Minute)
		if !claim("e1", t2) {
			t.Fatal("a stale claim was not taken over")
		}
		end := func(id string, claimedAt time.Time, outcome string) error {
			return db.InTx(ctx, func(tx *store.Tx) error { return tx.EndOutcomeNotice(ctx, id, claimedAt, outcome, t2) })
		}
		if err := end("e1", t1, store.NoticeSent); !errors.Is(err, store.ErrConflict) {
			t.Errorf("ending a claim taken over: %v, want ErrConflict", err)
		}
		if err := end("e1", t2, store.NoticeSent); err != nil {
			t.Fatal(err)
		}
		if claim("e1", t2.Add(time.Hour)) {
			t.Error("a notice sent was claimed again")
		}
		if n, err := db.OutcomeNoticeOf(ctx, "e1"); err != nil || n.Outcome != store.NoticeSent || !n.Claimed {
			t.Errorf("e1's notice: %+v, %v", n, err)
		}
		if n, err := db.UnsentOutcomeNotices(ctx); err != nil || n != 2 {
			t.Errorf("unsent: %d, %v; want 2", n, err)
		}
		due(t2.Add(time.Hour), "e3", "e2")
	})
}
