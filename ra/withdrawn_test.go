package ra_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
)

// TestWithdrawnApprovals: an approval stands only while its officer does.
// Once the approving officer's certificate is revoked (a stolen key), or
// the officer deactivated, a business seal needs two other officers; the
// officer sees the decision marked withdrawn.
func TestWithdrawnApprovals(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) { d.Now = clk.Now })
			dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)
			aigerim := registerOfficerAs(t, fx.ca, fx.db, "Aigerim Officer", aigerimPerson)

			// The first approver's certificate revoked for keyCompromise.
			seal := fx.proved(t, business(), "business-seal")
			answer{status: 200, state: store.StatePendingApproval}.check(t, "first approval", fx.act(t, signAction(t, fx.officer, approve(seal), clk.Now())))
			if err := fx.ca.Revoke(t.Context(), fx.officer.cert.SerialNumber.Bytes(), 1, "test"); err != nil {
				t.Fatal(err)
			}
			answer{status: 200, state: store.StatePendingApproval}.check(t, "the second approval, the first withdrawn", fx.act(t, signAction(t, dana, approve(seal), clk.Now())))
			item := fx.show(t, aigerim, seal, clk.Now())
			if item.Approvals != 1 || len(item.Decisions) != 2 || item.Decisions[0]["withdrawn"] != "the officer's certificate was revoked" || item.Decisions[1]["withdrawn"] != "" {
				t.Errorf("the queue item after the withdrawal: %d approvals, decisions %v", item.Approvals, item.Decisions)
			}
			answer{status: 200, state: store.StateIssued}.check(t, "a third officer's approval", fx.act(t, signAction(t, aigerim, approve(seal), clk.Now())))

			// The first approver deactivated.
			seal2 := fx.proved(t, business(), "business-seal")
			answer{status: 200, state: store.StatePendingApproval}.check(t, "first approval", fx.act(t, signAction(t, aigerim, approve(seal2), clk.Now())))
			fp := sha256.Sum256(aigerim.cert.Raw)
			o, err := fx.db.Officer(t.Context(), fp[:])
			if err != nil {
				t.Fatal(err)
			}
			o.Active = false
			if err := fx.db.InTx(t.Context(), func(tx *store.Tx) error { return tx.PutOfficer(t.Context(), o) }); err != nil {
				t.Fatal(err)
			}
			answer{status: 200, state: store.StatePendingApproval}.check(t, "the second approval, the first officer deactivated", fx.act(t, signAction(t, dana, approve(seal2), clk.Now())))
		})
	}
}
