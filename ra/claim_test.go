package ra

import (
	"database/sql"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestClaim: of two RA nodes that listed the same approved enrollment as
// left over, the first to claim it finishes it; the second's claim, made
// with the same cutoff, is refused. A claim of an enrollment in another
// state is refused too.
func TestClaim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		now := start
		s := &Service{d: Deps{Store: db, Now: func() time.Time { return now }}, group: db.NewGroup(16)}
		for _, e := range []store.Enrollment{
			{ID: "approved-enrollment-01", State: store.StateApproved},
			{ID: "issued-enrollment-0001", State: store.StateIssued},
		} {
			e.SubjectID, e.Profile, e.CSR, e.RequestHash, e.CreatedAt = "subj_"+e.ID, "citizen-auth", []byte{0x30}, []byte{1}, start
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.PutSubject(ctx, store.Subject{ID: e.SubjectID, Kind: "person", NationalID: "IDCKZ-" + e.ID, Attributes: []byte("{}"), CreatedAt: start}); err != nil {
					return err
				}
				return tx.InsertEnrollment(ctx, e)
			}); err != nil {
				t.Fatal(err)
			}
		}
		now = start.Add(2 * time.Minute)
		cutoff := now.Add(-time.Minute) // both nodes listed it before this
		for i, want := range []bool{true, false} {
			if got, err := s.claim(ctx, "approved-enrollment-01", cutoff); err != nil || got != want {
				t.Errorf("claim %d: %v, %v; want %v", i+1, got, err, want)
			}
		}
		if got, err := s.claim(ctx, "issued-enrollment-0001", cutoff); err != nil || got {
			t.Errorf("claim of an issued enrollment: %v, %v", got, err)
		}
	})
}
