package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestRegistryEvents: an event is recorded once by its id, with or without
// a known subject; its outcome is decided once; the listing reads them in
// the order received, all or only those pending.
func TestRegistryEvents(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db, _ := storetest.Open(t, driver)
			ctx := t.Context()
			t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
			subj := store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-880312448217", Attributes: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}
			if err := db.InTx(ctx, func(tx *store.Tx) error { _, err := tx.PutSubject(ctx, subj); return err }); err != nil {
				t.Fatal(err)
			}
			known := store.RegistryEvent{EventID: "kz-1", Source: "registry:a", SubjectID: "s1", Kind: store.EventDeath,
				OccurredAt: t0, ReceivedAt: t0.Add(time.Minute), Payload: "a.b.c"}
			unknown := store.RegistryEvent{EventID: "kz-2", Source: "registry:a", Kind: store.EventDissolution,
				OccurredAt: t0, ReceivedAt: t0.Add(2 * time.Minute), Payload: "d.e.f"}
			for _, ev := range []store.RegistryEvent{known, unknown} {
				if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertRegistryEvent(ctx, ev) }); err != nil {
					t.Fatalf("%s: %v", ev.EventID, err)
				}
			}
			again := known
			again.Payload = "g.h.i"
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertRegistryEvent(ctx, again) }); !errors.Is(err, store.ErrConflict) {
				t.Errorf("the same id again: %v, want ErrConflict", err)
			}
			got, err := db.RegistryEvent(ctx, "kz-2")
			if err != nil || got.SubjectID != "" || got.Outcome != store.OutcomePending || !got.OutcomeAt.IsZero() || got.Payload != "d.e.f" || !got.ReceivedAt.Equal(unknown.ReceivedAt) {
				t.Errorf("kz-2: %+v %v", got, err)
			}
			if _, err := db.RegistryEvent(ctx, "kz-3"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("no such event: %v", err)
			}

			decided := t0.Add(time.Hour)
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndRegistryEvent(ctx, "kz-1", store.OutcomeApplied, `{"revoked":[]}`, decided)
			}); err != nil {
				t.Fatal(err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndRegistryEvent(ctx, "kz-1", store.OutcomeIgnored, "", decided)
			}); !errors.Is(err, store.ErrConflict) {
				t.Errorf("a second outcome: %v, want ErrConflict", err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndRegistryEvent(ctx, "kz-9", store.OutcomeApplied, "", decided)
			}); !errors.Is(err, store.ErrConflict) {
				t.Errorf("the outcome of no event: %v, want ErrConflict", err)
			}
			got, err = db.RegistryEvent(ctx, "kz-1")
			if err != nil || got.Outcome != store.OutcomeApplied || got.OutcomeDetail != `{"revoked":[]}` || !got.OutcomeAt.Equal(decided) || got.SubjectID != "s1" {
				t.Errorf("kz-1: %+v %v", got, err)
			}

			// kz-1 is s1's applied death: an issuance for s1 must not go
			// on, in a read of its own or in a transaction.
			ended, err := db.SubjectEndedBy(ctx, "s1", t0)
			if err != nil || ended.EventID != "kz-1" || ended.Kind != store.EventDeath || ended.Source != "registry:a" {
				t.Errorf("SubjectEndedBy(s1): %+v %v", ended, err)
			}
			// Received before what asks (an enrollment made since): it
			// does not count.
			if ev, err := db.SubjectEndedBy(ctx, "s1", t0.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SubjectEndedBy(s1) since after the event: %+v %v", ev, err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				ev, err := tx.SubjectEndedBy(ctx, "s1", t0)
				if err != nil || ev.EventID != "kz-1" {
					t.Errorf("SubjectEndedBy(s1): %+v %v", ev, err)
				}
				_, err = tx.SubjectEndedBy(ctx, "s2", t0)
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("SubjectEndedBy(s2): %v", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// s2 has no event; s3's death was ignored.
			for _, id := range []string{"s2", "s3"} {
				if err := db.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.PutSubject(ctx, store.Subject{ID: id, Kind: "person", NationalID: "IDCKZ-" + id, Attributes: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0})
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				ev := store.RegistryEvent{EventID: "kz-4", Source: "registry:a", SubjectID: "s3", Kind: store.EventDeath, OccurredAt: t0, ReceivedAt: t0, Payload: "x"}
				if err := tx.InsertRegistryEvent(ctx, ev); err != nil {
					return err
				}
				return tx.EndRegistryEvent(ctx, "kz-4", store.OutcomeIgnored, "{}", t0)
			}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"s2", "s3", "s9"} {
				if ev, err := db.SubjectEndedBy(ctx, id, t0); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("SubjectEndedBy(%s): %+v %v, want ErrNotFound", id, ev, err)
				}
			}

			// Reopened: an applied or failed event is pending again, with
			// the new delivery's payload and source when given; a pending
			// one cannot be reopened.
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.ReopenRegistryEvent(ctx, "kz-2", "", "") }); !errors.Is(err, store.ErrConflict) {
				t.Errorf("reopen a pending event: %v, want ErrConflict", err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.EndRegistryEvent(ctx, "kz-2", store.OutcomeFailed, `{"error":"x"}`, decided); err != nil {
					return err
				}
				return tx.ReopenRegistryEvent(ctx, "kz-2", "j.k.l", "registry:b")
			}); err != nil {
				t.Fatal(err)
			}
			got, err = db.RegistryEvent(ctx, "kz-2")
			if err != nil || got.Outcome != store.OutcomePending || got.Payload != "j.k.l" || got.Source != "registry:b" || got.OutcomeDetail != "" || !got.OutcomeAt.IsZero() {
				t.Errorf("kz-2 reopened: %+v %v", got, err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.ReopenRegistryEvent(ctx, "kz-1", "", "") }); err != nil {
				t.Fatal(err)
			}
			if got, err := db.RegistryEvent(ctx, "kz-1"); err != nil || got.Outcome != store.OutcomePending || got.Payload != "a.b.c" || got.Source != "registry:a" {
				t.Errorf("kz-1 reopened: %+v %v", got, err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndRegistryEvent(ctx, "kz-1", store.OutcomeApplied, "{}", decided)
			}); err != nil {
				t.Fatal(err)
			}

			ids := func(evs []store.RegistryEvent, err error) []string {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				out := []string{}
				for _, ev := range evs {
					out = append(out, ev.EventID)
				}
				return out
			}
			for _, c := range []struct {
				name    string
				since   time.Time
				pending bool
				limit   int
				want    []string
			}{
				{"all", t0, false, 10, []string{"kz-4", "kz-1", "kz-2"}},
				{"the first", t0, false, 1, []string{"kz-4"}},
				{"since the second", t0.Add(2 * time.Minute), false, 10, []string{"kz-2"}},
				{"pending", t0, true, 10, []string{"kz-2"}},
			} {
				if got := ids(db.RegistryEvents(ctx, c.since, c.pending, c.limit)); !equal(got, c.want) {
					t.Errorf("%s: %v, want %v", c.name, got, c.want)
				}
			}

			// Two deaths of s1 (a registry that reported twice), the one
			// received first stored last: the first received ends s1,
			// whatever order the rows come in; since after it, the other.
			// Received at the same time, the smaller id.
			for _, ev := range []store.RegistryEvent{
				{EventID: "kz-00", Source: "registry:a", SubjectID: "s1", Kind: store.EventDeath, OccurredAt: t0, ReceivedAt: t0.Add(30 * time.Second), Payload: "n"},
				{EventID: "kz-0", Source: "registry:a", SubjectID: "s1", Kind: store.EventDeath, OccurredAt: t0, ReceivedAt: t0.Add(30 * time.Second), Payload: "m"},
			} {
				if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertRegistryEvent(ctx, ev) }); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				since time.Time
				want  string
			}{{t0, "kz-0"}, {t0.Add(45 * time.Second), "kz-1"}} {
				if ev, err := db.SubjectEndedBy(ctx, "s1", c.since); err != nil || ev.EventID != c.want {
					t.Errorf("SubjectEndedBy(s1) since %v: %q %v, want %s", c.since, ev.EventID, err, c.want)
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSubjectsWithGoodCertificates: a recheck asks about the subjects that
// hold a signed, good, unexpired certificate, each once, in id order, page
// by page.
func TestSubjectsWithGoodCertificates(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			db, _ := storetest.Open(t, driver)
			ctx := t.Context()
			now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			putIssuer(t, db, testIssuer("issuing", "issuing"))
			type cert struct {
				subject         string
				signed, revoked bool
				expired         bool
			}
			certs := []cert{
				{"s1", true, false, false}, {"s2", true, true, false}, {"s3", true, false, true},
				{"s4", false, false, false}, {"s5", true, false, false}, {"s5", true, false, false}, {"s6", true, false, false},
			}
			err := db.InTx(ctx, func(tx *store.Tx) error {
				for _, id := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
					if _, err := tx.PutSubject(ctx, store.Subject{ID: id, Kind: "person", NationalID: "IDCKZ-" + id, Attributes: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
						return err
					}
				}
				for i, c := range certs {
					notAfter := now.AddDate(1, 0, 0)
					if c.expired {
						notAfter = now.Add(-time.Second)
					}
					row := store.Certificate{IssuerID: "issuing", Serial: []byte{0x40, byte(i)}, SubjectID: c.subject, Profile: "citizen-auth",
						NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter, TBS: []byte{0x30}, CreatedAt: now.AddDate(-1, 0, 0)}
					if err := tx.InsertCertificateIntent(ctx, row); err != nil {
						return err
					}
					if c.signed {
						if err := tx.SetCertificateDER(ctx, "issuing", row.Serial, []byte{0x30, 0x82}, now); err != nil {
							return err
						}
					}
					if c.revoked {
						if err := tx.RevokeCertificate(ctx, "issuing", row.Serial, now, 1, now); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			page := func(after string, limit int) []string {
				t.Helper()
				subjects, err := db.SubjectsWithGoodCertificates(ctx, after, now, limit)
				if err != nil {
					t.Fatal(err)
				}
				out := []string{}
				for _, s := range subjects {
					if s.NationalID != "IDCKZ-"+s.ID || s.Kind != "person" {
						t.Errorf("subject %+v", s)
					}
					out = append(out, s.ID)
				}
				return out
			}
			for _, c := range []struct {
				after string
				limit int
				want  []string
			}{
				{"", 10, []string{"s1", "s5", "s6"}},
				{"", 2, []string{"s1", "s5"}},
				{"s5", 2, []string{"s6"}},
				{"s6", 2, []string{}},
			} {
				if got := page(c.after, c.limit); !equal(got, c.want) {
					t.Errorf("after %q, %d: %v, want %v", c.after, c.limit, got, c.want)
				}
			}
		})
	}
}

// TestLockSubject: a transaction that takes a subject's lock waits for
// another that holds it, and then reads what that one wrote (the subject
// row an enrollment stored while a death event waited). On PostgreSQL the
// second is seen waiting on the advisory lock before the first goes on,
// and another subject's lock does not wait; on SQLite the write lock
// serializes them anyway.
func TestLockSubject(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		const kind, id = "person", "IDCKZ-000000000001" // no other test's
		t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		locked, release, aDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			aDone <- db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.LockSubject(ctx, kind, id); err != nil {
					return err
				}
				if _, err := tx.SubjectByNationalID(ctx, kind, id); !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("before: %v, want ErrNotFound", err)
				}
				close(locked)
				<-release
				_, err := tx.PutSubject(ctx, store.Subject{ID: "s-locked", Kind: kind, NationalID: id, Attributes: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0})
				return err
			})
		}()
		<-locked
		var seen store.Subject
		bDone := make(chan error, 1)
		go func() {
			bDone <- db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.LockSubject(ctx, kind, id); err != nil {
					return err
				}
				var err error
				seen, err = tx.SubjectByNationalID(ctx, kind, id)
				return err
			})
		}()
		if err := storetest.AwaitSubjectLockWaiter(raw, db.Driver(), kind, id, bDone); err != nil {
			t.Fatal(err)
		}
		if db.Driver() == store.DriverPostgres {
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.LockSubject(ctx, kind, "IDCKZ-880312448217") }); err != nil {
				t.Errorf("another subject's lock: %v", err)
			}
		}
		close(release)
		if err := <-aDone; err != nil {
			t.Fatal(err)
		}
		if err := <-bDone; err != nil || seen.ID != "s-locked" {
			t.Errorf("the second transaction read %+v, %v; want the subject the first stored", seen, err)
		}
	})
}

// TestUnmatchedRegistryEvents: the events that matched no subject, of a
// kind, received since a time, that name the subject's key, and beside
// them those received before keys were recorded, whomever they name; not
// another subject's, another kind's, an earlier one, nor one matched.
func TestUnmatchedRegistryEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		subj := store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-880312448217", Attributes: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}
		const a, b = "IDCKZ-880312448217", "IDCKZ-850721313761"
		ev := func(id, kind, key, subject string, minute int) store.RegistryEvent {
			return store.RegistryEvent{EventID: id, Source: "registry:a", SubjectID: subject, SubjectKey: key, Kind: kind,
				OccurredAt: t0, ReceivedAt: t0.Add(time.Duration(minute) * time.Minute), Payload: "a.b.c"}
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.PutSubject(ctx, subj); err != nil {
				return err
			}
			for _, e := range []store.RegistryEvent{
				ev("before", store.EventDeath, a, "", -1),
				ev("a-death", store.EventDeath, a, "", 1),
				ev("b-death", store.EventDeath, b, "", 2),
				ev("a-dissolution", store.EventDissolution, a, "", 3),
				ev("a-matched", store.EventDeath, a, "s1", 4),
				ev("unkeyed", store.EventDeath, "", "", 5),
				ev("a-death-2", store.EventDeath, a, "", 6),
			} {
				if err := tx.InsertRegistryEvent(ctx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			key, kind string
			limit     int
			want      []string
		}{
			{a, store.EventDeath, 10, []string{"a-death", "unkeyed", "a-death-2"}},
			{a, store.EventDeath, 2, []string{"a-death", "unkeyed"}},
			{a, store.EventDissolution, 10, []string{"a-dissolution", "unkeyed"}},
			{b, store.EventDeath, 10, []string{"b-death", "unkeyed"}},
		} {
			var got []string
			err := db.InTx(ctx, func(tx *store.Tx) error {
				evs, err := tx.UnmatchedRegistryEvents(ctx, c.key, c.kind, t0, c.limit)
				for _, e := range evs {
					got = append(got, e.EventID)
				}
				return err
			})
			if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s %s (limit %d): %v %v, want %v", c.key, c.kind, c.limit, got, err, c.want)
			}
		}
	})
}
