package audit_test

import (
	"context"
	"crypto"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

const origin = "sanad audit log test"

// fixedClock advances one second per call from a fixed start, so tests are
// repeatable.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// auditKey is a real ECDSA P-256 key in a fresh SoftHSM2 token.
func auditKey(t *testing.T) *hsm.Key {
	t.Helper()
	tok := hsmtest.NewToken(t)
	key, err := tok.Token.GenerateKey(context.Background(), hsm.KeySpec{Label: "audit", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func appendN(t *testing.T, db *store.DB, log *audit.Log, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i <= to; i++ {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			err := log.Append(tx, audit.Event{
				Actor: "system", Action: "test.event", Object: fmt.Sprintf("object-%d", i),
				Details: map[string]any{"i": i, "note": "<&>"},
			})
			return err
		})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// buildLog writes events 1..10 with signed checkpoints at 2 and 6, so 7..10
// are unattested.
func buildLog(t *testing.T, db *store.DB, key crypto.Signer) {
	t.Helper()
	clock := fixedClock()
	log := audit.New(clock)
	cp, err := audit.NewCheckpointer(db, key, origin, clock)
	if err != nil {
		t.Fatal(err)
	}
	for _, upTo := range []int{2, 6} {
		have, _ := db.AuditHead(context.Background())
		appendN(t, db, log, int(have.Seq)+1, upTo)
		if _, wrote, err := cp.Checkpoint(context.Background()); err != nil || !wrote {
			t.Fatalf("checkpoint at %d: wrote=%v err=%v", upTo, wrote, err)
		}
	}
	appendN(t, db, log, 7, 10)
}

func verify(t *testing.T, db *store.DB, key crypto.Signer) audit.Report {
	t.Helper()
	r, err := audit.Verify(context.Background(), db, origin, []crypto.PublicKey{key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readEvent(t *testing.T, db *store.DB, seq int64) store.AuditEvent {
	t.Helper()
	var found store.AuditEvent
	err := db.ScanAuditEvents(context.Background(), seq-1, func(ev store.AuditEvent) error {
		found = ev
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	if found.Seq != seq {
		t.Fatalf("event %d not found", seq)
	}
	return found
}

var errStop = errors.New("stop")

func exec(t *testing.T, raw *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := raw.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// rewrite edits events from..to as an attacker who knows the encoding would:
// new actor, every hash and prev_hash recomputed, head moved along.
func rewrite(t *testing.T, db *store.DB, raw *sql.DB, from, to int64) {
	t.Helper()
	prev := readEvent(t, db, from-1).Hash
	for seq := from; seq <= to; seq++ {
		ev := readEvent(t, db, seq)
		ev.Actor, ev.PrevHash = "mallory", prev
		ev.Hash = audit.Hash(ev)
		exec(t, raw, "UPDATE audit_events SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4", ev.Actor, ev.PrevHash, ev.Hash, seq)
		prev = ev.Hash
	}
	exec(t, raw, "UPDATE audit_head SET hash = $1", prev)
}

func TestVerifyDetectsTampering(t *testing.T) {
	key := auditKey(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *store.DB, raw *sql.DB)
		want   int64 // first bad seq; 0 = intact
	}{
		{"intact", func(*testing.T, *store.DB, *sql.DB) {}, 0},
		{"edit a column", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			exec(t, raw, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 8")
		}, 8},
		{"edit details of an attested row", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			exec(t, raw, `UPDATE audit_events SET details = '{"i":4,"note":"changed"}' WHERE seq = 4`)
		}, 4},
		{"edit a row and recompute its hash", func(t *testing.T, db *store.DB, raw *sql.DB) {
			ev := readEvent(t, db, 8)
			ev.Object = "other-object"
			exec(t, raw, "UPDATE audit_events SET object = $1, hash = $2 WHERE seq = 8", ev.Object, audit.Hash(ev))
		}, 8},
		{"delete a row", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			exec(t, raw, "DELETE FROM audit_events WHERE seq = 4")
		}, 4},
		{"delete the last rows", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			exec(t, raw, "DELETE FROM audit_events WHERE seq >= 9")
		}, 9},
		{"delete back past a checkpoint and rewind the head", func(t *testing.T, db *store.DB, raw *sql.DB) {
			h := readEvent(t, db, 4).Hash
			exec(t, raw, "DELETE FROM audit_events WHERE seq >= 5")
			exec(t, raw, "UPDATE audit_head SET seq = 4, hash = $1", h)
		}, 5},
		{"insert a row in the middle", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			// Shift 4..10 up by one (through a parking range: seq is a
			// key), then put a copy of row 3 with a new actor at 4.
			exec(t, raw, "UPDATE audit_events SET seq = seq + 1000001 WHERE seq >= 4")
			exec(t, raw, "UPDATE audit_events SET seq = seq - 1000000 WHERE seq > 1000000")
			exec(t, raw, `INSERT INTO audit_events (seq, logged_at, actor, action, object, details, prev_hash, hash)
				SELECT 4, logged_at, 'mallory', action, object, details, hash, hash FROM audit_events WHERE seq = 3`)
		}, 4},
		{"append a well-formed row behind the log's back", func(t *testing.T, db *store.DB, raw *sql.DB) {
			ev := readEvent(t, db, 10)
			ev.Seq, ev.PrevHash, ev.Actor = 11, ev.Hash, "mallory"
			ev.Hash = audit.Hash(ev)
			exec(t, raw, `INSERT INTO audit_events (seq, logged_at, actor, action, object, details, prev_hash, hash)
				SELECT 11, logged_at, $1, action, object, details, $2, $3 FROM audit_events WHERE seq = 10`, ev.Actor, ev.PrevHash, ev.Hash)
		}, 11},
		{"reorder two rows", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			exec(t, raw, "UPDATE audit_events SET seq = 1000000 WHERE seq = 4")
			exec(t, raw, "UPDATE audit_events SET seq = 4 WHERE seq = 5")
			exec(t, raw, "UPDATE audit_events SET seq = 5 WHERE seq = 1000000")
		}, 4},
		{"rewrite everything after seq 2 with recomputed hashes", func(t *testing.T, db *store.DB, raw *sql.DB) {
			rewrite(t, db, raw, 3, 10)
		}, 3},
		{"rewrite unattested rows with recomputed hashes", func(t *testing.T, db *store.DB, raw *sql.DB) {
			// Beyond the last checkpoint only the chain protects the rows:
			// a careful rewrite is not detectable, and the report says how
			// many events are unattested.
			rewrite(t, db, raw, 8, 10)
		}, 0},
		{"forge a checkpoint signature", func(t *testing.T, _ *store.DB, raw *sql.DB) {
			exec(t, raw, "UPDATE audit_checkpoints SET signature = $1 WHERE seq = 6", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
		}, 6},
	}
	storetest.Each(t, func(t *testing.T, _ *store.DB, _ *sql.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db, raw := storetest.Open(t, dbDriver(t))
				buildLog(t, db, key)
				tt.tamper(t, db, raw)
				r := verify(t, db, key)
				if r.FirstBad != tt.want {
					t.Fatalf("FirstBad = %d, want %d; problems: %+v", r.FirstBad, tt.want, r.Problems)
				}
				if (tt.want == 0) != r.OK() {
					t.Fatalf("OK() = %v with problems %+v", r.OK(), r.Problems)
				}
				if tt.want == 0 && (r.AttestedSeq != 6 || r.Unattested != 4 || r.Events != 10) {
					t.Errorf("report = %+v, want 10 events, attested to 6, 4 unattested", r)
				}
			})
		}
	})
}

// dbDriver reads the driver from the subtest name storetest.Each gives.
func dbDriver(t *testing.T) string {
	for _, d := range storetest.Drivers() {
		if strings.Contains(t.Name(), "/"+d) {
			return d
		}
	}
	t.Fatalf("no driver in test name %q", t.Name())
	return ""
}

func TestVerifyRejectsUntrustedKey(t *testing.T) {
	key := auditKey(t)
	other, err := hsmtest.NewToken(t).Token.GenerateKey(context.Background(), hsm.KeySpec{Label: "other", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	db, _ := storetest.Open(t, "sqlite")
	buildLog(t, db, key)
	r := verify(t, db, other)
	if r.FirstBad != 2 || !strings.Contains(r.Problems[0].Reason, "not a trusted audit key") {
		t.Fatalf("report = %+v", r)
	}
}

func TestAppendIsPartOfTheCallersTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		log := audit.New(fixedClock())
		boom := errors.New("change failed")
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := log.Append(tx, audit.Event{Actor: "system", Action: "test.event"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		head, err := db.AuditHead(ctx)
		if err != nil || head.Seq != 0 {
			t.Fatalf("rolled-back event left head %+v (%v)", head, err)
		}
	})
}

func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		log := audit.New(time.Now)
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					errs <- db.InTx(ctx, func(tx *store.Tx) error {
						err := log.Append(tx, audit.Event{Actor: fmt.Sprintf("writer-%d", w), Action: "test.event", Object: fmt.Sprint(i)})
						return err
					})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		r, err := audit.Verify(ctx, db, origin, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Events != writers*each {
			t.Fatalf("report = %+v", r)
		}
	})
}

// TestHashEncodingIsStable pins the canonical encoding: changing it would
// make every existing log unverifiable, so it must be a deliberate v2.
func TestHashEncodingIsStable(t *testing.T) {
	ev := store.AuditEvent{
		Seq:      42,
		Time:     time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC),
		Actor:    "officer:ab12",
		Action:   "certificate.revoke",
		Object:   "serial:0a1b",
		Details:  []byte(`{"reason":"keyCompromise"}`),
		PrevHash: make([]byte, 32),
	}
	// Computed independently from the encoding in doc.go (Python hashlib).
	const want = "37f7920e5d13a44af05e7b65a5a3afe271972a58e3504289b174b8089875c274"
	got := hex.EncodeToString(audit.Hash(ev))
	if got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
}
