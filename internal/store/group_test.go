package store_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestGroup: concurrent callers share transactions (fewer commits than
// callers); a caller that fails or panics is rolled back alone, its audit
// head move included; the others' writes, and the audit chain across
// them, are all there.
func TestGroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		g := db.NewGroup(64)
		const n = 60
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = g.InTx(ctx, func(tx *store.Tx) error {
					// An audited write: the head is read and moved inside the group.
					head, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					ev := store.AuditEvent{Seq: head.Seq + 1, Time: t0, Actor: "test", Action: "x", Details: []byte("{}"), PrevHash: head.Hash}
					sum := sha256.Sum256(binary.BigEndian.AppendUint64(append([]byte(nil), head.Hash...), uint64(ev.Seq)))
					ev.Hash = sum[:]
					if err := tx.AppendAuditEvent(ctx, ev); err != nil {
						return err
					}
					if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: []byte{0x10, byte(i)},
						Profile: "citizen-auth", NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30}, CreatedAt: t0}); err != nil {
						return err
					}
					switch i % 20 {
					case 7:
						return errors.New("refused after writing")
					case 13:
						panic("boom")
					}
					return nil
				})
			})
		}
		wg.Wait()
		failed := 0
		for i, err := range errs {
			want := i%20 == 7 || i%20 == 13
			if (err != nil) != want {
				t.Errorf("caller %d: %v", i, err)
			}
			if err != nil {
				failed++
			}
		}
		if c := g.Commits.Load(); c >= n || g.Calls.Load() != n {
			t.Errorf("%d callers took %d transactions", g.Calls.Load(), c)
		}
		var rows int
		if err := raw.QueryRow(`SELECT count(*) FROM certificates`).Scan(&rows); err != nil || rows != n-failed {
			t.Errorf("%d certificate rows, want %d (%v)", rows, n-failed, err)
		}
		head, err := db.AuditHead(ctx)
		if err != nil || head.Seq != int64(n-failed) {
			t.Fatalf("audit head %d, want %d (%v)", head.Seq, n-failed, err)
		}
		// The chain is unbroken across the group's savepoints.
		var prev []byte
		seq := int64(0)
		if err := db.ScanAuditEvents(ctx, 0, func(e store.AuditEvent) error {
			seq++
			if e.Seq != seq || (prev != nil && string(e.PrevHash) != string(prev)) {
				return fmt.Errorf("event %d does not follow event %d", e.Seq, seq-1)
			}
			prev = e.Hash
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}
