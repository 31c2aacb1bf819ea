package ra_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/registry"
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

// revokingRegistry revokes the officer's certificate and deactivates the
// officer while the RA asks the registry about a business, once armed: the
// time between a request's authentication and its decision.
type revokingRegistry struct {
	registry.Registry
	armed  atomic.Bool
	revoke func()
}

func (r *revokingRegistry) Business(ctx context.Context, country, reg string) (registry.Business, registry.Evidence, error) {
	if r.armed.CompareAndSwap(true, false) {
		r.revoke()
	}
	return r.Registry.Business(ctx, country, reg)
}

// TestApprovalWithdrawnInFlight: an officer whose certificate is revoked
// (a stolen key) and who is deactivated while their approval is on its
// way does not approve; and an enrollment approved while the CA was down,
// whose approving officer's certificate is revoked before Resume issues
// it, fails instead of being issued on that approval.
func TestApprovalWithdrawnInFlight(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			var reg *revokingRegistry
			failing := &failingCA{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				reg = &revokingRegistry{Registry: d.Registry}
				d.Registry = reg
				failing.Issuer = d.CA
				d.CA = failing
			})
			dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)

			// business-auth: one officer; the registry is asked of the
			// business as the decision begins (notOwn).
			id := fx.proved(t, business(), "business-auth")
			reg.revoke = func() {
				if err := fx.ca.Revoke(context.Background(), fx.officer.cert.SerialNumber.Bytes(), 1, "test"); err != nil {
					t.Error(err)
				}
			}
			reg.armed.Store(true)
			answer{status: 403, problem: "certificate-revoked"}.check(t, "an approval whose officer was revoked on its way", fx.act(t, signAction(t, fx.officer, approve(id), time.Now())))
			if e, err := fx.db.Enrollment(t.Context(), id); err != nil || e.State != store.StatePendingApproval {
				t.Errorf("the enrollment: %s (%v), want pending_approval", e.State, err)
			}

			// Approved by Dana while the CA is down; Dana's key then
			// reported compromised; Resume does not issue.
			seal := fx.proved(t, citizen(), "citizen-sign")
			failing.failing.Store(true)
			answer{status: 200, state: store.StateApproved}.check(t, "an approval while the CA is down", fx.act(t, signAction(t, dana, approve(seal), time.Now())))
			if err := fx.ca.Revoke(t.Context(), dana.cert.SerialNumber.Bytes(), 1, "test"); err != nil {
				t.Fatal(err)
			}
			failing.failing.Store(false)
			if _, err := fx.svc.Resume(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			e, err := fx.db.Enrollment(t.Context(), seal)
			if err != nil || e.State != store.StateFailed || !strings.Contains(e.StateReason, "0 of the 1 approvals needed stand") {
				t.Errorf("the enrollment after Resume: %s %q (%v), want failed, its approval withdrawn", e.State, e.StateReason, err)
			}
		})
	}
}
