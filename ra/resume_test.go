package ra_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/policies"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/registry"
)

// TestResume: enrollments a stop left approved are finished at start-up —
// one the CA had already certified becomes issued with that certificate,
// one it had not is certified now — and nothing younger than the grace is
// touched.
func TestResume(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		log := audit.New(time.Now)
		authority := f.CA(t, db, log)
		profiles, err := profile.LoadAll(policies.FS)
		if err != nil {
			t.Fatal(err)
		}
		policy, err := ra.LoadPolicy(policies.FS, profiles)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := registry.Sample(time.Now)
		if err != nil {
			t.Fatal(err)
		}
		outbox := ownerOnlyDir(t)
		clock := time.Now
		svc, err := ra.New(ra.Deps{Store: db, Audit: log, CA: authority, Revoker: authority, Issuers: map[string]*x509.Certificate{f.Issuer.ID: f.Issuer.Certificate},
			Registry: reg, Notifier: ra.Outbox{Dir: outbox}, Profiles: profiles,
			Policy: policy, Now: func() time.Time { return clock() }})
		if err != nil {
			t.Fatal(err)
		}
		enroll := func(profileName string) store.Enrollment {
			t.Helper()
			body, _ := json.Marshal(map[string]any{"profile": profileName, "csr": csrPEM(t, newKey(t)),
				"applicant": map[string]any{"kind": "person", "country": "KZ", "national_id": "880312448217",
					"given_name": "Aigerim", "family_name": "Sadykova", "birth_date": "1988-03-12"}})
			e, _, err := svc.Enroll(ctx, body, "")
			if err != nil {
				t.Fatal(err)
			}
			msg, err := os.ReadFile(filepath.Join(outbox, e.ID+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var m ra.Message
			json.Unmarshal(msg, &m)
			if e, err = svc.Proof(ctx, e.ID, m.Code); err != nil {
				t.Fatal(err)
			}
			return e
		}
		setState := func(id, state string) {
			t.Helper()
			q := `UPDATE enrollments SET state = $1 WHERE id = $2`
			if db.Driver() == store.DriverSQLite {
				q = `UPDATE enrollments SET state = ?1 WHERE id = ?2`
			}
			if _, err := raw.ExecContext(ctx, q, state, id); err != nil {
				t.Fatal(err)
			}
		}

		// Certified, but the stop came before the RA recorded it.
		certified := enroll("citizen-auth")
		if certified.State != store.StateIssued {
			t.Fatalf("auto enrollment: %s", certified.State)
		}
		cert, err := db.CertificateOfEnrollment(ctx, certified.ID)
		if err != nil {
			t.Fatal(err)
		}
		setState(certified.ID, store.StateApproved)
		// Approved by an officer, but the stop came before the CA was
		// asked.
		waiting := enroll("citizen-sign")
		dana := registerOfficerAs(t, authority, db, "Dana Officer", danaPerson)
		danaFP := sha256.Sum256(dana.cert.Raw)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.InsertApproval(ctx, store.Approval{EnrollmentID: waiting.ID, OfficerFingerprint: danaFP[:], Decision: "approve", JWS: "(test)", DecidedAt: time.Now().UTC()})
		}); err != nil {
			t.Fatal(err)
		}
		setState(waiting.ID, store.StateApproved)

		if n, err := svc.Resume(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("resume within the grace: %d, %v", n, err)
		}
		clock = func() time.Time { return time.Now().Add(2 * time.Hour) }
		if n, err := svc.Resume(ctx, time.Hour); err != nil || n != 2 {
			t.Fatalf("resume: %d, %v", n, err)
		}
		for _, id := range []string{certified.ID, waiting.ID} {
			e, err := db.Enrollment(ctx, id)
			if err != nil || e.State != store.StateIssued {
				t.Fatalf("enrollment %s after resume: %s, %v", id, e.State, err)
			}
		}
		if again, err := db.CertificateOfEnrollment(ctx, certified.ID); err != nil || string(again.Serial) != string(cert.Serial) {
			t.Errorf("the certified enrollment got another certificate: %x, was %x (%v)", again.Serial, cert.Serial, err)
		}
		if _, err := db.CertificateOfEnrollment(ctx, waiting.ID); err != nil {
			t.Errorf("the waiting enrollment was not certified: %v", err)
		}
		if n, err := svc.Resume(ctx, time.Hour); err != nil || n != 0 {
			t.Errorf("a second resume: %d, %v", n, err)
		}
		if rep, err := audit.Verify(ctx, db, "test", nil); err != nil || rep.FirstBad != 0 {
			t.Errorf("audit log: %+v, %v", rep, err)
		}
	})
}

// flakyCA fails its first issuance as the CA's own failure would (an HSM
// error, say), then issues.
type flakyCA struct {
	ra.Issuer
	failed bool
}

func (c *flakyCA) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	if !c.failed {
		c.failed = true
		return nil, errors.New("hsm: CKR_DEVICE_ERROR")
	}
	return c.Issuer.Issue(ctx, req)
}

// TestIssueRetry: when the CA fails on its own side, the approved
// enrollment stays approved with a reason saying it will be retried (an
// audit event records the failure), and Resume issues it once the grace
// has passed.
func TestIssueRetry(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	flaky := &flakyCA{}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		flaky.Issuer = d.CA
		d.CA = flaky
	})
	id, code := fx.enroll(t, citizen(), "citizen-auth") // auto-approved
	a := fx.proof(t, id, code)
	if a.status != 200 || a.state != store.StateApproved {
		t.Fatalf("proof with the CA failing: %+v, want 200 approved", a)
	}
	e, err := fx.db.Enrollment(t.Context(), id)
	if err != nil || !strings.Contains(e.StateReason, "try again") {
		t.Fatalf("enrollment after the failure: %+v (%v)", e, err)
	}
	svc := fx.svc
	if n, err := svc.Resume(t.Context(), time.Minute); err != nil || n != 0 {
		t.Fatalf("resume within the grace: %d, %v", n, err)
	}
	clk.Add(2 * time.Minute)
	if n, err := svc.Resume(t.Context(), time.Minute); err != nil || n != 1 {
		t.Fatalf("resume: %d, %v", n, err)
	}
	if e, err := fx.db.Enrollment(t.Context(), id); err != nil || e.State != store.StateIssued {
		t.Fatalf("after resume: %s (%v), want issued", e.State, err)
	}
	var retries int
	if err := fx.raw.QueryRowContext(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'enrollment.issue.retry'`).Scan(&retries); err != nil || retries != 1 {
		t.Errorf("retry audit events: %d (%v), want 1", retries, err)
	}

}

// gateCA fails its first issuance as the CA's own failure would, holds
// the second until released, and counts them all.
type gateCA struct {
	ra.Issuer
	mu               sync.Mutex
	calls            int
	entered, release chan struct{}
}

func (c *gateCA) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	c.mu.Lock()
	c.calls++
	n := c.calls
	c.mu.Unlock()
	switch n {
	case 1:
		return nil, errors.New("hsm: CKR_DEVICE_ERROR")
	case 2:
		close(c.entered)
		<-c.release
	}
	return c.Issuer.Issue(ctx, req)
}

// TestResumeClaims: while one RA node is finishing an approved enrollment
// (its issuance held in the CA), another node resuming leaves it alone: one
// claims it, one certificate is issued.
func TestResumeClaims(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			gate := &gateCA{entered: make(chan struct{}), release: make(chan struct{})}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				d.Now = clk.Now
				gate.Issuer = d.CA
				d.CA = gate
			})
			id, code := fx.enroll(t, citizen(), "citizen-auth")
			if a := fx.proof(t, id, code); a.state != store.StateApproved {
				t.Fatalf("proof with the CA failing: %+v", a)
			}
			other, err := ra.New(fx.deps)
			if err != nil {
				t.Fatal(err)
			}
			clk.Add(2 * time.Minute)
			first := make(chan int, 1)
			go func() {
				n, err := fx.svc.Resume(t.Context(), time.Minute)
				if err != nil {
					t.Error(err)
				}
				first <- n
			}()
			<-gate.entered // the first node claimed it and is issuing
			if n, err := other.Resume(t.Context(), time.Minute); err != nil || n != 0 {
				t.Errorf("the second node: finished %d, %v; want 0", n, err)
			}
			close(gate.release)
			if n := <-first; n != 1 {
				t.Errorf("the first node finished %d, want 1", n)
			}
			var certs int
			if err := fx.raw.QueryRowContext(t.Context(), fx.q(`SELECT count(*) FROM certificates WHERE enrollment_id = $1`), id).Scan(&certs); err != nil {
				t.Fatal(err)
			}
			if gate.calls != 2 || certs != 1 {
				t.Errorf("%d issuances asked of the CA, %d certificates for the enrollment; want 2 (one failed) and 1", gate.calls, certs)
			}
		})
	}
}

// TestResumeLeavesIssuanceInFlight: an officer's approval on one node whose
// HSM is slower than Resume's grace has its intent committed and nothing
// signed yet; another node's Resume leaves that enrollment alone (the
// intent is an issuance still running, or one the CA's recovery revokes),
// so the enrollment gets the one certificate the first node finishes.
func TestResumeLeavesIssuanceInFlight(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) { d.Now = clk.Now })
			id := fx.proved(t, citizen(), "citizen-sign")

			// Node A: a CA whose HSM stalls once the intent is committed.
			nodeA, stalled, release := fx.stallingNode(t, f)
			approved := make(chan error, 1)
			go func() {
				_, err := nodeA.Act(context.Background(), string(signAction(t, fx.officer, approve(id), clk.Now())))
				approved <- err
			}()
			<-stalled
			clk.Add(2 * time.Minute)
			// Node B's periodic Resume, twice: the enrollment stays A's.
			for range 2 {
				if n, err := fx.svc.Resume(t.Context(), time.Minute); err != nil || n != 0 {
					t.Errorf("Resume during A's issuance: finished %d, %v; want 0", n, err)
				}
			}
			close(release)
			if err := <-approved; err != nil {
				t.Fatalf("node A's approval: %v", err)
			}
			var good, all int
			if err := fx.raw.QueryRowContext(t.Context(), fx.q(`SELECT count(*), count(CASE WHEN status = 'good' AND der IS NOT NULL THEN 1 END) FROM certificates WHERE enrollment_id = $1`), id).Scan(&all, &good); err != nil {
				t.Fatal(err)
			}
			e, err := fx.db.Enrollment(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if all != 1 || good != 1 || e.State != store.StateIssued {
				t.Errorf("%d certificates, %d good and signed, enrollment %s; want 1, 1, issued", all, good, e.State)
			}
		})
	}
}

// stallingNode is another RA node over fx's store whose CA stalls once
// the first issuance's intent is committed: stalled is closed then, and
// the HSM signs once release is closed.
func (fx *raFixture) stallingNode(t *testing.T, f catest.Fixture) (node *ra.Service, stalled, release chan struct{}) {
	t.Helper()
	stalled, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	deps := f.Deps(fx.db, fx.deps.Audit)
	deps.Fault = func(point string) error {
		if point == ca.FaultAfterIntent {
			once.Do(func() { close(stalled); <-release })
		}
		return nil
	}
	slow, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	d := fx.deps
	d.CA, d.Revoker = slow, slow
	if node, err = ra.New(d); err != nil {
		t.Fatal(err)
	}
	return node, stalled, release
}
