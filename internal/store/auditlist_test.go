package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestListAuditEvents: each filter of ListAuditEvents alone and together,
// in seq order, within the limit.
func TestListAuditEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		kinds := []struct{ actor, action, object string }{
			{"officer:alice", "enrollment.approve", "enrollment/a"},
			{"holder:0A", "certificate.revoke", "issuing/0a"},
			{"officer:alice", "enrollment.approve", "enrollment/b"},
			{"system:notice", "certificate.revoke.notice", "issuing/0a"},
			{"officer:bob", "enrollment.reject", "enrollment/a"},
			{"officer:alice", "certificate.revoke", "issuing/0b"},
		}
		for _, k := range kinds {
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				h, err := tx.AuditHead(ctx)
				if err != nil {
					return err
				}
				e := testEvent(h.Seq+1, h.Hash)
				e.Actor, e.Action, e.Object = k.actor, k.action, k.object
				return tx.AppendAuditEvent(ctx, e)
			}); err != nil {
				t.Fatal(err)
			}
		}
		at := func(seq int64) time.Time { return testEvent(seq, nil).Time }
		for _, tt := range []struct {
			name string
			f    store.AuditFilter
			want []int64
		}{
			{"everything", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6}},
			{"an object", store.AuditFilter{Objects: []string{"issuing/0a"}}, []int64{2, 4}},
			{"an actor", store.AuditFilter{Actor: "officer:alice"}, []int64{1, 3, 6}},
			{"an action", store.AuditFilter{Action: "certificate.revoke"}, []int64{2, 6}},
			{"an object and an actor", store.AuditFilter{Objects: []string{"enrollment/a"}, Actor: "officer:bob"}, []int64{5}},
			{"a time range", store.AuditFilter{Since: at(3), Until: at(5)}, []int64{3, 4}},
			{"after a seq", store.AuditFilter{AfterSeq: 4}, []int64{5, 6}},
			{"a limit", store.AuditFilter{Actor: "officer:alice", Limit: 2}, []int64{1, 3}},
			{"every filter at once", store.AuditFilter{Objects: []string{"issuing/0a"}, Actor: "system:notice", Action: "certificate.revoke.notice",
				Since: at(1), Until: at(6), AfterSeq: 1, Limit: 5}, []int64{4}},
			{"either of two objects", store.AuditFilter{Objects: []string{"issuing/0b", "enrollment/b"}}, []int64{3, 6}},
			{"nothing", store.AuditFilter{Objects: []string{"enrollment/z"}}, nil},
		} {
			events, err := db.ListAuditEvents(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var got []int64
			for _, e := range events {
				got = append(got, e.Seq)
				if want := testEvent(e.Seq, e.PrevHash); string(e.Details) != string(want.Details) || !e.Time.Equal(want.Time) {
					t.Errorf("%s: event %d read back as %+v", tt.name, e.Seq, e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: seqs %v, want %v", tt.name, got, tt.want)
			}
		}
	})
}

// TestAuditSnapshot: reads in one InAuditSnapshot see the log as it stood
// at the first of them, while events and a checkpoint commit meanwhile;
// afterwards the connection is back in the pool outside any transaction.
func TestAuditSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		appendEvents := func(n int) {
			t.Helper()
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				for i := range n {
					tx.RecordAudit(store.AuditRecord{Actor: "test", Action: "snapshot", Object: fmt.Sprint(i), Details: []byte("{}")}, testChain)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		appendEvents(3)
		err := db.InAuditSnapshot(ctx, func(s *store.AuditSnapshot) error {
			head, err := s.Head(ctx)
			if err != nil || head.Seq != 3 {
				t.Fatalf("head = %+v, %v; want seq 3", head, err)
			}
			appendEvents(2)
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.PutAuditCheckpoint(ctx, testCheckpoint(5)) }); err != nil {
				t.Fatal(err)
			}
			var seen []int64
			if err := s.ScanEvents(ctx, 0, func(e store.AuditEvent) error { seen = append(seen, e.Seq); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seen, []int64{1, 2, 3}) {
				t.Errorf("events in the snapshot: %v, want 1..3", seen)
			}
			if cps, err := s.Checkpoints(ctx); err != nil || len(cps) != 0 {
				t.Errorf("checkpoints in the snapshot: %+v, %v; want none", cps, err)
			}
			if head, err := s.Head(ctx); err != nil || head.Seq != 3 {
				t.Errorf("head read again = %+v, %v; want seq 3", head, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if head, err := db.AuditHead(ctx); err != nil || head.Seq != 5 {
			t.Errorf("head after the snapshot = %+v, %v; want seq 5", head, err)
		}
		// The snapshot's error is its caller's; every pooled connection
		// sees the latest state after it (none was left inside the read).
		errStop := errors.New("stop")
		if err := db.InAuditSnapshot(ctx, func(*store.AuditSnapshot) error { return errStop }); !errors.Is(err, errStop) {
			t.Errorf("InAuditSnapshot = %v, want fn's error", err)
		}
		for range 8 {
			if cps, err := db.AuditCheckpoints(ctx); err != nil || len(cps) != 1 {
				t.Fatalf("checkpoints after the snapshot: %d, %v; want 1", len(cps), err)
			}
		}
	})
}
