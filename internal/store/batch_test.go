package store_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestBatchWrites writes more rows than one statement takes (the batch
// writes chunk them) and reads every one back through the one-row reads.
func TestBatchWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)
		const n = 600 // three statements of at most 256 rows
		intents := make([]store.Certificate, n)
		signed := make([]store.SignedCertificate, n)
		responses := make([]store.OCSPResponse, n)
		for i := range n {
			serial := binary.BigEndian.AppendUint32([]byte{0x40}, uint32(i))
			intents[i] = store.Certificate{IssuerID: "issuing", Serial: serial, Profile: "citizen-auth",
				NotBefore: t0, NotAfter: t0.AddDate(2, 0, 0), TBS: []byte{0x30, byte(i)}, CreatedAt: t0}
			signed[i] = store.SignedCertificate{IssuerID: "issuing", Serial: serial, DER: []byte{0x30, 0x82, byte(i), byte(i >> 8)}, At: t0.Add(time.Second)}
			responses[i] = store.OCSPResponse{IssuerID: "issuing", Serial: serial, DER: []byte{0x30, byte(i)},
				ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 4), UpdatedAt: t0.Add(time.Second)}
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertCertificateIntents(ctx, intents) }); err != nil {
			t.Fatal(err)
		}
		if unsigned, err := db.UnsignedCertificates(ctx); err != nil || len(unsigned) != n {
			t.Fatalf("%d unsigned intents, %v; want %d", len(unsigned), err, n)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.SetCertificateDERs(ctx, signed); err != nil {
				return err
			}
			return tx.PutOCSPResponses(ctx, responses)
		}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			c, err := db.Certificate(ctx, "issuing", intents[i].Serial)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.DER, signed[i].DER) || !bytes.Equal(c.TBS, intents[i].TBS) || c.Status != store.StatusGood ||
				!c.CreatedAt.Equal(t0) || !c.UpdatedAt.Equal(signed[i].At) || c.SubjectID != "" || c.Profile != "citizen-auth" {
				t.Fatalf("row %d = %+v", i, c)
			}
			r, err := db.OCSPResponse(ctx, "issuing", intents[i].Serial)
			if err != nil || !bytes.Equal(r.DER, responses[i].DER) || !r.NextUpdate.Equal(responses[i].NextUpdate) {
				t.Fatalf("response %d = %+v, %v", i, r, err)
			}
		}

		// The responses upsert: a second batch replaces them.
		for i := range responses {
			responses[i].DER = []byte{0x31, byte(i)}
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.PutOCSPResponses(ctx, responses) }); err != nil {
			t.Fatal(err)
		}
		if r, err := db.OCSPResponse(ctx, "issuing", intents[n-1].Serial); err != nil || !bytes.Equal(r.DER, responses[n-1].DER) {
			t.Errorf("after upsert: %x, %v", r.DER, err)
		}
	})
}

// TestBatchWritesFailWhole: a batch that cannot write every row is
// ErrConflict and, rolled back, leaves nothing behind.
func TestBatchWritesFailWhole(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		intent := func(serial byte) store.Certificate {
			return store.Certificate{IssuerID: "issuing", Serial: []byte{serial}, Profile: "citizen-auth",
				NotBefore: t0, NotAfter: t0.AddDate(2, 0, 0), TBS: []byte{0x30}, CreatedAt: t0}
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.InsertCertificateIntents(ctx, []store.Certificate{intent(1), intent(2), intent(3)})
		}); err != nil {
			t.Fatal(err)
		}
		// A serial already taken fails the whole batch of intents.
		err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.InsertCertificateIntents(ctx, []store.Certificate{intent(4), intent(2)})
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate serial in a batch: %v", err)
		}
		if _, err := db.Certificate(ctx, "issuing", []byte{4}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("serial 4 was written by a failed batch: %v", err)
		}

		// Recovery revoked intent 2: a batch completing 1 and 2 fails, and
		// intent 1 stays unsigned.
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", []byte{2}, t0, 5, t0)
		}); err != nil {
			t.Fatal(err)
		}
		err = db.InTx(ctx, func(tx *store.Tx) error {
			return tx.SetCertificateDERs(ctx, []store.SignedCertificate{
				{IssuerID: "issuing", Serial: []byte{1}, DER: []byte{0x30}, At: t0},
				{IssuerID: "issuing", Serial: []byte{2}, DER: []byte{0x30}, At: t0},
			})
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("completing a revoked intent in a batch: %v", err)
		}
		if c, err := db.Certificate(ctx, "issuing", []byte{1}); err != nil || c.DER != nil {
			t.Errorf("intent 1 after the failed batch: DER %x, %v", c.DER, err)
		}
		if c, err := db.Certificate(ctx, "issuing", []byte{2}); err != nil || c.DER != nil || c.Status != store.StatusRevoked {
			t.Errorf("intent 2 after the failed batch: %+v, %v", c, err)
		}
	})
}

// TestAppendAuditEventsChecksTheRun: a run of events must extend the head
// and each other; anything else writes nothing.
func TestAppendAuditEventsChecksTheRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		run := func(firstSeq int64, prev []byte, n int) []store.AuditEvent {
			es := make([]store.AuditEvent, n)
			for i := range es {
				es[i] = store.AuditEvent{Seq: firstSeq + int64(i), Time: t0, Actor: "test", Action: "x", Details: []byte("{}"), PrevHash: prev}
				sum := sha256.Sum256(append(binary.BigEndian.AppendUint64(nil, uint64(es[i].Seq)), prev...))
				es[i].Hash = sum[:]
				prev = es[i].Hash
			}
			return es
		}
		appendRun := func(es []store.AuditEvent) error {
			return db.InTx(ctx, func(tx *store.Tx) error { return tx.AppendAuditEvents(ctx, es) })
		}
		genesis := make([]byte, 32)
		good := run(1, genesis, 300)
		broken := append([]store.AuditEvent(nil), good...)
		broken[150].PrevHash = genesis
		if err := appendRun(broken); err == nil {
			t.Error("a run with a broken link was appended")
		}
		gap := append(append([]store.AuditEvent(nil), good[:10]...), good[11:20]...)
		if err := appendRun(gap); err == nil {
			t.Error("a run with a gap was appended")
		}
		if err := appendRun(run(2, genesis, 3)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a run not extending the head: %v", err)
		}
		if h, _ := db.AuditHead(ctx); h.Seq != 0 {
			t.Fatalf("head moved to %d by refused runs", h.Seq)
		}
		if err := appendRun(good); err != nil {
			t.Fatal(err)
		}
		h, err := db.AuditHead(ctx)
		if err != nil || h.Seq != 300 || !bytes.Equal(h.Hash, good[299].Hash) {
			t.Fatalf("head = %d %x, %v", h.Seq, h.Hash, err)
		}
		var seen int64
		if err := db.ScanAuditEvents(ctx, 0, func(e store.AuditEvent) error {
			seen++
			if e.Seq != seen || !bytes.Equal(e.Hash, good[seen-1].Hash) || !bytes.Equal(e.PrevHash, good[seen-1].PrevHash) {
				t.Fatalf("event %d = %+v", seen, e)
			}
			return nil
		}); err != nil || seen != 300 {
			t.Fatalf("scanned %d events, %v", seen, err)
		}
	})
}
