package audit_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"database/sql"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestCheckpointerSignsOnlyAnExtension: a Checkpointer refuses to sign a
// log that someone with the database rewrote: history under a checkpoint
// the database still holds, or after deleting the checkpoints it signed.
// Nothing is signed then.
func TestCheckpointerSignsOnlyAnExtension(t *testing.T) {
	key := auditKey(t)
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		buildLog(t, db, key) // events 1..10, checkpoints at 2 and 6
		// Events 1..6 as they are, for the restore below.
		var backup []store.AuditEvent
		for seq := int64(1); seq <= 6; seq++ {
			backup = append(backup, readEvent(t, db, seq))
		}
		cp, err := audit.NewCheckpointer(db, key, origin, fixedClock())
		if err != nil {
			t.Fatal(err)
		}
		// Events 7..10 extend checkpoint 6: signed.
		if got, wrote, err := cp.Checkpoint(ctx); err != nil || !wrote || got.Seq != 10 {
			t.Fatalf("Checkpoint = %d, %v, %v; want a new one at 10", got.Seq, wrote, err)
		}
		if err := cp.Extends(ctx); err != nil {
			t.Errorf("Extends after a checkpoint: %v", err)
		}
		latest := func() int64 {
			t.Helper()
			c, err := db.LatestAuditCheckpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return c.Seq
		}

		// The checkpoint this Checkpointer signed deleted, the history
		// under it rewritten with every hash recomputed, one event added.
		exec(t, raw, "DELETE FROM audit_checkpoints WHERE seq = 10")
		rewrite(t, db, raw, 8, 10)
		appendN(t, db, audit.New(fixedClock()), 11, 11)
		if _, wrote, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote || !strings.Contains(err.Error(), "seq 10 is no longer in the database") {
			t.Errorf("after its checkpoint was deleted: wrote=%v err=%v; want ErrNotExtended", wrote, err)
		}
		if err := cp.Extends(ctx); !errors.Is(err, audit.ErrNotExtended) {
			t.Errorf("Extends after the refusal: %v, want ErrNotExtended", err)
		}

		// Another Checkpointer (a restart) does not know checkpoint 10,
		// but the database still holds 6: a rewrite of 2..11 no longer
		// extends it.
		rewrite(t, db, raw, 2, 11)
		other, err := audit.NewCheckpointer(db, key, origin, fixedClock())
		if err != nil {
			t.Fatal(err)
		}
		if _, wrote, err := other.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote || !strings.Contains(err.Error(), "seq 6 no longer has the hash") {
			t.Errorf("history under checkpoint 6 rewritten: wrote=%v err=%v; want ErrNotExtended", wrote, err)
		}
		if got := latest(); got != 6 {
			t.Errorf("latest checkpoint %d after the refusals, want 6", got)
		}
		if err := other.Extends(ctx); !errors.Is(err, audit.ErrNotExtended) {
			t.Errorf("Extends after the restarted refusal: %v, want ErrNotExtended", err)
		}

		// The database's trouble is not the log's: a refusal stands
		// through it. An operator's restore (here, the rewritten events
		// and the checkpoints after 6 removed, as a restore from before
		// them would leave it) makes the node ready again.
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := other.Checkpoint(canceled); err == nil || errors.Is(err, audit.ErrNotExtended) {
			t.Errorf("Checkpoint with a canceled context: %v, want the context's error", err)
		}
		if err := other.Extends(ctx); !errors.Is(err, audit.ErrNotExtended) {
			t.Errorf("Extends after a failed read: %v, want the refusal still", err)
		}
		exec(t, raw, "DELETE FROM audit_events WHERE seq > 6")
		exec(t, raw, "DELETE FROM audit_checkpoints WHERE seq > 6")
		for _, ev := range backup {
			exec(t, raw, "UPDATE audit_events SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4", ev.Actor, ev.PrevHash, ev.Hash, ev.Seq)
		}
		exec(t, raw, "UPDATE audit_head SET seq = 6, hash = $1", backup[5].Hash)
		if _, wrote, err := other.Checkpoint(ctx); err != nil || wrote {
			t.Errorf("Checkpoint after the restore: wrote=%v, %v; want checkpoint 6 to cover the head", wrote, err)
		}
		if err := other.Extends(ctx); err != nil {
			t.Errorf("Extends after the restore: %v", err)
		}
	})
}

// TestCheckpointerSeesTheLogCutShort: a log cut short below its latest
// checkpoint, or whose last covered event is gone while the head still
// names it, is refused at once, not only once the log grows past the
// checkpoint again (new events would meanwhile chain onto the cut log).
func TestCheckpointerSeesTheLogCutShort(t *testing.T) {
	key := auditKey(t)
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		cp, _ := signedTo10(t, db, key)
		// Event 10 deleted, the head left naming it.
		exec(t, raw, "DELETE FROM audit_events WHERE seq = 10")
		if _, wrote, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote {
			t.Errorf("the covered event deleted: wrote=%v err=%v; want ErrNotExtended", wrote, err)
		}
		// Events 8..10 deleted and the head moved back to 7.
		seven := readEvent(t, db, 7)
		exec(t, raw, "DELETE FROM audit_events WHERE seq > 7")
		exec(t, raw, "UPDATE audit_head SET seq = 7, hash = $1", seven.Hash)
		if _, wrote, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote || !strings.Contains(err.Error(), "behind the latest checkpoint (seq 10)") {
			t.Errorf("the log cut short below checkpoint 10: wrote=%v err=%v; want ErrNotExtended", wrote, err)
		}
		if err := cp.Extends(ctx); !errors.Is(err, audit.ErrNotExtended) {
			t.Errorf("Extends of the cut log: %v, want ErrNotExtended", err)
		}
	})
}

// TestHeldCheckpoint: a checkpoint kept outside the database (SignedNote)
// shows what the database's own cannot once they are deleted too: the log
// cut short, or rewritten, under it.
func TestHeldCheckpoint(t *testing.T) {
	key := auditKey(t)
	ctx := context.Background()
	verifyHeld := func(t *testing.T, db *store.DB, held ...store.AuditCheckpoint) audit.Report {
		t.Helper()
		r, err := audit.Verify(ctx, db, origin, []crypto.PublicKey{key.Public()}, held...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		buildLog(t, db, key)
		stored, err := db.LatestAuditCheckpoint(ctx)
		if err != nil || stored.Seq != 6 {
			t.Fatalf("latest checkpoint = %+v, %v", stored, err)
		}
		note := audit.SignedNote(origin, stored)
		gotOrigin, held, err := audit.ParseSignedNote(note)
		if err != nil || gotOrigin != origin || held.Seq != 6 || !bytes.Equal(held.Hash, stored.Hash) || !held.Time.Equal(stored.Time) ||
			!bytes.Equal(held.KeyID, stored.KeyID) || !bytes.Equal(held.Signature, stored.Signature) {
			t.Fatalf("ParseSignedNote(SignedNote) = %q, %+v, %v; want %+v", gotOrigin, held, err, stored)
		}
		if r := verifyHeld(t, db, held); !r.OK() {
			t.Fatalf("untampered log with its held checkpoint: %+v", r.Problems)
		}

		// Events 5..10 deleted with checkpoint 6 and the head rewound:
		// the database's checkpoint 2 still verifies; the held one does
		// not.
		h := readEvent(t, db, 4).Hash
		exec(t, raw, "DELETE FROM audit_events WHERE seq >= 5")
		exec(t, raw, "DELETE FROM audit_checkpoints WHERE seq >= 5")
		exec(t, raw, "UPDATE audit_head SET seq = 4, hash = $1", h)
		if r := verifyHeld(t, db); !r.OK() {
			t.Fatalf("the cut log without the held checkpoint: %+v (the database alone cannot show the cut)", r.Problems)
		}
		r := verifyHeld(t, db, held)
		if r.OK() || r.FirstBad != 5 || !strings.Contains(r.Problems[0].Reason, "held checkpoint covers seq 6 but the log ends at seq 4") {
			t.Errorf("the cut log with the held checkpoint: %+v", r)
		}

		// Rewritten under it, every database checkpoint deleted.
		appendN(t, db, audit.New(fixedClock()), 5, 8)
		exec(t, raw, "DELETE FROM audit_checkpoints")
		rewrite(t, db, raw, 2, 8)
		r = verifyHeld(t, db, held)
		if r.OK() || r.FirstBad != 6 || !strings.Contains(r.Problems[0].Reason, "no longer matches the checkpoint held outside the database") {
			t.Errorf("the rewritten log with the held checkpoint: %+v", r)
		}

		// A held checkpoint must itself be signed by a trusted key.
		forged := held
		forged.Hash = readEvent(t, db, 6).Hash
		if r := verifyHeld(t, db, forged); r.OK() || !strings.Contains(r.Problems[0].Reason, "held checkpoint at seq 6: signature invalid") {
			t.Errorf("a held checkpoint with a forged hash: %+v", r)
		}
	})
}

// TestParseSignedNote: a note is read back only in the form SignedNote
// writes.
func TestParseSignedNote(t *testing.T) {
	good := "sanad test\n6\n" + strings.Repeat("A", 43) + "=\n2026-11-24T10:00:01.123456Z\n\n\u2014 sanad-audit " + strings.Repeat("A", 43) + "= MEUCIQ==\n"
	if _, cp, err := audit.ParseSignedNote([]byte(good)); err != nil || cp.Seq != 6 {
		t.Fatalf("ParseSignedNote(good) = %+v, %v", cp, err)
	}
	for name, note := range map[string]string{
		"no blank line":    strings.Replace(good, "\n\n", "\n", 1),
		"extra line":       strings.Replace(good, "\n6\n", "\n6\n7\n", 1),
		"seq zero":         strings.Replace(good, "\n6\n", "\n0\n", 1),
		"seq with sign":    strings.Replace(good, "\n6\n", "\n+6\n", 1),
		"short hash":       strings.Replace(good, strings.Repeat("A", 43)+"=", "AAAA", 1),
		"time not UTC":     strings.Replace(good, "123456Z", "123456+01:00", 1),
		"time in seconds":  strings.Replace(good, ".123456Z", "Z", 1),
		"no signature tag": strings.Replace(good, "\u2014 sanad-audit ", "", 1),
		"third field":      strings.Replace(good, "MEUCIQ==\n", "MEUCIQ== x\n", 1),
		"no final newline": strings.TrimSuffix(good, "\n"),
		"empty signature":  strings.Replace(good, " MEUCIQ==", " ", 1),
	} {
		if _, _, err := audit.ParseSignedNote([]byte(note)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseSignedNote: what ParseSignedNote accepts is exactly what
// SignedNote writes for it, so a held checkpoint has one spelling.
func FuzzParseSignedNote(f *testing.F) {
	f.Add([]byte("sanad test\n6\n" + strings.Repeat("A", 43) + "=\n2026-11-24T10:00:01.123456Z\n\n\u2014 sanad-audit " + strings.Repeat("A", 43) + "= MEUCIQ==\n"))
	f.Add([]byte("o\n1\n\n\n\n"))
	f.Fuzz(func(t *testing.T, note []byte) {
		origin, cp, err := audit.ParseSignedNote(note)
		if err != nil {
			return
		}
		if again := audit.SignedNote(origin, cp); !bytes.Equal(again, note) {
			t.Errorf("accepted %q, which SignedNote writes as %q", note, again)
		}
	})
}

// TestCheckpointerRemembers: with its last checkpoint kept in the HSM
// (Remember), a restarted Checkpointer, or another node's, refuses a log
// rewritten under that checkpoint with the checkpoint deleted, where one
// that remembers nothing signs it. Restored then records the loss in the
// log, the HSM keeps the checkpoint the log resumes from, and signing
// goes on; a second Restored finds nothing lost.
func TestCheckpointerRemembers(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		tok := hsmtest.NewToken(t)
		key, err := tok.Token.GenerateKey(ctx, hsm.KeySpec{Label: "audit", Type: hsm.ECDSAP256})
		if err != nil {
			t.Fatal(err)
		}
		memory := hsm.Data{Token: tok.Token, Label: "audit-checkpoint"}
		newCheckpointer := func(remember bool) *audit.Checkpointer {
			t.Helper()
			cp, err := audit.NewCheckpointer(db, key, origin, fixedClock())
			if err != nil {
				t.Fatal(err)
			}
			if remember {
				cp.Remember(memory)
			}
			return cp
		}
		buildLog(t, db, key) // events 1..10, checkpoints at 2 and 6
		if got, wrote, err := newCheckpointer(true).Checkpoint(ctx); err != nil || !wrote || got.Seq != 10 {
			t.Fatalf("Checkpoint = %d, %v, %v; want a new one at 10", got.Seq, wrote, err)
		}
		if kept, err := memory.Recall(ctx); err != nil || len(kept) != 1 || !strings.Contains(string(kept[0]), "\n10\n") {
			t.Fatalf("the HSM keeps %q, %v; want checkpoint 10", kept, err)
		}

		// Checkpoint 10 deleted, the history under it rewritten, then a
		// restart.
		exec(t, raw, "DELETE FROM audit_checkpoints WHERE seq = 10")
		rewrite(t, db, raw, 8, 10)
		restarted := newCheckpointer(true)
		if _, wrote, err := restarted.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote || !strings.Contains(err.Error(), "seq 10 is no longer in the database") {
			t.Errorf("restarted, remembering: wrote=%v err=%v; want ErrNotExtended", wrote, err)
		}
		if err := restarted.Extends(ctx); !errors.Is(err, audit.ErrNotExtended) {
			t.Errorf("Extends: %v, want ErrNotExtended", err)
		}

		// The operator says the database was restored: the loss is in the
		// log, and signing goes on from checkpoint 6, the latest the key
		// signed, not from a row forged at 9 since.
		forgeCheckpoint(t, db, key, 9)
		lost, resumed, err := restarted.Restored(ctx, audit.New(fixedClock()), "operator:test")
		if err != nil || lost.Seq != 10 || resumed.Seq != 6 {
			t.Fatalf("Restored = %d, %d, %v; want 10 lost, resumed from 6", lost.Seq, resumed.Seq, err)
		}
		head, err := db.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev := readEvent(t, db, head.Seq); ev.Action != "audit.restored" || !strings.Contains(string(ev.Details), "lost_checkpoint") {
			t.Errorf("the last event: %s %s; want audit.restored naming the checkpoint lost", ev.Action, ev.Details)
		}
		if got, wrote, err := restarted.Checkpoint(ctx); err != nil || !wrote || got.Seq != head.Seq {
			t.Errorf("Checkpoint after Restored = %d, %v, %v; want one at %d", got.Seq, wrote, err, head.Seq)
		}
		if _, _, err := restarted.Restored(ctx, audit.New(fixedClock()), "operator:test"); !errors.Is(err, audit.ErrNotRestored) {
			t.Errorf("Restored again: %v, want ErrNotRestored", err)
		}
	})
}

// TestCheckpointerTrustsNoForgedRow: a checkpoint row is not the point a
// log must extend unless the audit key signed it. A rewrite of the history
// under the checkpoint this Checkpointer signed, with a row forged at its
// new end (the rewritten hash, a signature no key made) and the signed
// checkpoint left in place, is refused, where the forged row once had the
// next checkpoint signed over the rewrite. Without a checkpoint of its
// own, a Checkpointer refuses a latest row that names its key and does
// not verify.
func TestCheckpointerTrustsNoForgedRow(t *testing.T) {
	key := auditKey(t)
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		cp, _ := signedTo10(t, db, key)
		appendN(t, db, audit.New(fixedClock()), 11, 12)
		rewrite(t, db, raw, 2, 12)
		forgeCheckpoint(t, db, key, 11)
		if got, wrote, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote || !strings.Contains(err.Error(), "seq 10 no longer has the hash") {
			t.Errorf("a rewrite under the signed checkpoint, a row forged at its end: signed %d (wrote=%v), %v; want ErrNotExtended at seq 10", got.Seq, wrote, err)
		}
		// A Checkpointer that signed nothing yet (a restart, no memory).
		other, err := audit.NewCheckpointer(db, key, origin, fixedClock())
		if err != nil {
			t.Fatal(err)
		}
		if _, wrote, err := other.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote || !strings.Contains(err.Error(), "does not verify") {
			t.Errorf("the latest row forged in this key's name: wrote=%v, %v; want ErrNotExtended naming the signature", wrote, err)
		}
	})
}

// forgeCheckpoint writes a checkpoint row at seq, as someone able to write
// the database could: the event's hash, key's id, a signature no key made.
func forgeCheckpoint(t *testing.T, db *store.DB, key crypto.Signer, seq int64) {
	t.Helper()
	ctx := context.Background()
	keyID, err := audit.KeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ev := readEvent(t, db, seq)
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: seq, Hash: ev.Hash, Time: time.Now().UTC().Truncate(time.Microsecond),
			KeyID: keyID, Signature: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointSignatureReencoded: the checkpoint a Checkpointer signed,
// its ECDSA signature re-encoded in the database as (r, n−s), which
// verifies as well, is still the checkpoint it signed: the checkpoints go
// on. Replaced with a signature that does not verify, it is not.
func TestCheckpointSignatureReencoded(t *testing.T) {
	key := auditKey(t)
	ctx := context.Background()
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		cp, signed := signedTo10(t, db, key)
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(signed.Signature, &sig); err != nil {
			t.Fatal(err)
		}
		sig.S.Sub(key.Public().(*ecdsa.PublicKey).Curve.Params().N, sig.S)
		other, err := asn1.Marshal(sig)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, raw, "UPDATE audit_checkpoints SET signature = $1 WHERE seq = 10", other)
		appendN(t, db, audit.New(fixedClock()), 11, 11)
		if got, wrote, err := cp.Checkpoint(ctx); err != nil || !wrote || got.Seq != 11 {
			t.Errorf("with checkpoint 10's signature re-encoded: %d, %v, %v; want a new one at 11", got.Seq, wrote, err)
		}
		exec(t, raw, "UPDATE audit_checkpoints SET signature = $1 WHERE seq = 11", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
		appendN(t, db, audit.New(fixedClock()), 12, 12)
		if _, wrote, err := cp.Checkpoint(ctx); !errors.Is(err, audit.ErrNotExtended) || wrote {
			t.Errorf("with checkpoint 11's signature replaced: wrote=%v, %v; want ErrNotExtended", wrote, err)
		}
	})
}

// signedTo10 writes buildLog's events 1..10 (checkpoints at 2 and 6) and
// has a new Checkpointer sign the head, seq 10.
func signedTo10(t *testing.T, db *store.DB, key crypto.Signer) (*audit.Checkpointer, store.AuditCheckpoint) {
	t.Helper()
	buildLog(t, db, key)
	cp, err := audit.NewCheckpointer(db, key, origin, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	signed, wrote, err := cp.Checkpoint(context.Background())
	if err != nil || !wrote || signed.Seq != 10 {
		t.Fatalf("Checkpoint = %d, %v, %v; want a new one at 10", signed.Seq, wrote, err)
	}
	return cp, signed
}
