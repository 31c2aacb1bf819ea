package store_test

import (
	"bytes"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

func TestEnrollmentsOfficersAndNonces(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		inTx := func(fn func(*store.Tx) error) error { return db.InTx(ctx, fn) }

		// A subject is one row per (kind, national id): a second put keeps
		// the first id and refreshes the attributes.
		var subj store.Subject
		if err := inTx(func(tx *store.Tx) (err error) {
			subj, err = tx.PutSubject(ctx, store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{"a":1}`), CreatedAt: t0})
			return err
		}); err != nil || subj.ID != "s1" {
			t.Fatalf("subject %+v, %v", subj, err)
		}
		if err := inTx(func(tx *store.Tx) (err error) {
			subj, err = tx.PutSubject(ctx, store.Subject{ID: "s2", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{"a":2}`), CreatedAt: t0.Add(time.Hour)})
			return err
		}); err != nil || subj.ID != "s1" || string(subj.Attributes) != `{"a":2}` || !subj.UpdatedAt.Equal(t0.Add(time.Hour)) || !subj.CreatedAt.Equal(t0) || subj.NationalID != "IDCKZ-900101300123" {
			t.Fatalf("second put: %+v, %v", subj, err)
		}

		e := store.Enrollment{ID: "e1", SubjectID: "s1", Profile: "citizen-sign", CSR: []byte{0x30}, State: store.StatePendingProof,
			Proofing: []byte(`{"attempts":0}`), IdempotencyKey: "k1", RequestHash: []byte{1, 2}, CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(72 * time.Hour)}
		if err := inTx(func(tx *store.Tx) error {
			if err := tx.InsertEnrollment(ctx, e); err != nil {
				return err
			}
			return tx.InsertRegistryEvidence(ctx, store.RegistryEvidence{EnrollmentID: "e1", Source: "file:sample", Record: "person", Version: "v3", Hash: []byte{9}, LookedUpAt: t0})
		}); err != nil {
			t.Fatal(err)
		}
		dup := e
		dup.ID = "e2"
		if err := inTx(func(tx *store.Tx) error { return tx.InsertEnrollment(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second enrollment with one idempotency key: %v", err)
		}
		got, err := db.EnrollmentByIdempotencyKey(ctx, "k1")
		if err != nil || got.ID != "e1" || !bytes.Equal(got.RequestHash, e.RequestHash) || !got.ExpiresAt.Equal(e.ExpiresAt) || string(got.Proofing) != `{"attempts":0}` {
			t.Fatalf("by key: %+v, %v", got, err)
		}
		if _, err := db.Enrollment(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown enrollment: %v", err)
		}
		ev, err := db.RegistryEvidence(ctx, "e1")
		if err != nil || len(ev) != 1 || ev[0].Version != "v3" || !ev[0].LookedUpAt.Equal(t0) {
			t.Errorf("evidence %+v, %v", ev, err)
		}

		// A state change names the state it starts from; a stale one fails.
		moved := got
		moved.State, moved.UpdatedAt = store.StatePendingApproval, t0.Add(time.Minute)
		if err := inTx(func(tx *store.Tx) error { return tx.UpdateEnrollment(ctx, store.StatePendingProof, moved) }); err != nil {
			t.Fatal(err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.UpdateEnrollment(ctx, store.StatePendingProof, moved) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("stale transition: %v", err)
		}
		queue, err := db.EnrollmentsInState(ctx, store.StatePendingApproval, 10)
		if err != nil || len(queue) != 1 || queue[0].ID != "e1" {
			t.Errorf("queue %+v, %v", queue, err)
		}

		// Officers, four-eyes approvals, nonces.
		fp1, fp2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
		for i, fp := range [][]byte{fp1, fp2} {
			o := store.Officer{Fingerprint: fp, CertificateDER: []byte{0x30, byte(i)}, Name: "officer", Roles: []string{"ra-officer"}, Active: true, CreatedAt: t0}
			if err := inTx(func(tx *store.Tx) error { return tx.PutOfficer(ctx, o) }); err != nil {
				t.Fatal(err)
			}
		}
		o, err := db.Officer(ctx, fp1)
		if err != nil || !o.Active || len(o.Roles) != 1 || o.Roles[0] != "ra-officer" {
			t.Fatalf("officer %+v, %v", o, err)
		}
		approve := func(fp []byte) error {
			return inTx(func(tx *store.Tx) error {
				return tx.InsertApproval(ctx, store.Approval{EnrollmentID: "e1", OfficerFingerprint: fp, Decision: "approve", JWS: "x.y.z", DecidedAt: t0})
			})
		}
		if err := approve(fp1); err != nil {
			t.Fatal(err)
		}
		if err := approve(fp1); !errors.Is(err, store.ErrConflict) {
			t.Errorf("one officer twice: %v", err)
		}
		if err := approve(fp2); err != nil {
			t.Fatal(err)
		}
		var approvals []store.Approval
		if err := inTx(func(tx *store.Tx) (err error) { approvals, err = tx.Approvals(ctx, "e1"); return err }); err != nil || len(approvals) != 2 {
			t.Errorf("approvals %+v, %v", approvals, err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.UseNonce(ctx, fp1, "n1", t0) }); err != nil {
			t.Fatal(err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.UseNonce(ctx, fp1, "n1", t0) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("replayed nonce: %v", err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.UseNonce(ctx, fp2, "n1", t0) }); err != nil {
			t.Errorf("another key's nonce: %v", err)
		}
		// Purged by when they were used: the older one only.
		if err := inTx(func(tx *store.Tx) error { return tx.UseNonce(ctx, fp1, "n2", t0.Add(time.Hour)) }); err != nil {
			t.Fatal(err)
		}
		if n, err := db.PurgeNonces(ctx, t0.Add(time.Minute)); n != 2 || err != nil {
			t.Errorf("PurgeNonces = %d, %v; want the two used at t0", n, err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.UseNonce(ctx, fp1, "n2", t0) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("the nonce used after the purge's time, used again: %v", err)
		}
		if err := inTx(func(tx *store.Tx) error { return tx.UseNonce(ctx, fp1, "n1", t0) }); err != nil {
			t.Errorf("a purged nonce, used again: %v", err)
		}
	})
}
