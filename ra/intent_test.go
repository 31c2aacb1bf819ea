package ra_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
)

// watchingCA is the CA, Prepare included, which looks at the store as each
// issuance begins: whether its intent came recorded, and what had
// committed by then. afterPrepare, once set, runs after the next Prepare.
type watchingCA struct {
	*ca.CA
	fx *raFixture

	mu           sync.Mutex
	prepared     int
	issuances    []watchedIssuance
	afterPrepare func()
}

// watchedIssuance is what watchingCA saw as an issuance began.
type watchedIssuance struct {
	enrollment string
	// recorded: the request came with its intent (ca.Request.Recorded).
	recorded bool
	// state is the enrollment's committed state; intents its committed
	// unsigned certificate rows.
	state   string
	intents int
}

func (c *watchingCA) Prepare(ctx context.Context, req ca.Request) (*ca.Intent, error) {
	in, err := c.CA.Prepare(ctx, req)
	c.mu.Lock()
	c.prepared++
	f := c.afterPrepare
	c.afterPrepare = nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return in, err
}

func (c *watchingCA) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	e, err := c.fx.db.Enrollment(ctx, req.EnrollmentID)
	if err != nil {
		return nil, err
	}
	var intents int
	if err := c.fx.raw.QueryRowContext(ctx, c.fx.q(`SELECT count(*) FROM certificates WHERE enrollment_id = $1 AND der IS NULL`), req.EnrollmentID).Scan(&intents); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.issuances = append(c.issuances, watchedIssuance{enrollment: req.EnrollmentID, recorded: req.Recorded != nil, state: e.State, intents: intents})
	c.mu.Unlock()
	return c.CA.Issue(ctx, req)
}

// watchedFixture is the RA fixture over a watchingCA wrapping the CA opts
// leave in Deps.CA (the fixture's own unless they change it), with
// Deps.IntentWithProof as given.
func watchedFixture(t *testing.T, f catest.Fixture, driver string, intentWithProof bool, opts ...func(*ra.Deps)) (*raFixture, *watchingCA) {
	t.Helper()
	watcher := &watchingCA{}
	fx := newRAFixture(t, f, driver, append(opts, func(d *ra.Deps) {
		watcher.CA = d.CA.(*ca.CA)
		d.CA, d.IntentWithProof = watcher, intentWithProof
	})...)
	watcher.fx = fx
	return fx, watcher
}

// afterNextPrepare has f run after the next Prepare.
func (c *watchingCA) afterNextPrepare(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.afterPrepare = f
}

// preparations is how many Prepare calls there were.
func (c *watchingCA) preparations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prepared
}

// last is the last issuance watched, and how many Prepare calls there were.
func (c *watchingCA) last(t *testing.T) (watchedIssuance, int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.issuances) == 0 {
		t.Fatal("no issuance")
	}
	return c.issuances[len(c.issuances)-1], c.prepared
}

// TestIntentRecordedWithProof: the code that approves an enrollment of a
// profile without officers commits the certificate's intent with the proof,
// so the CA is asked to sign an intent already committed, beside the
// approved enrollment. A wrong code records nothing; a profile with
// officers gets no intent at its proof. A key revoked for keyCompromise
// between the CA's preparation and the proof's transaction leaves the
// proof recorded without the intent, and the usual issuance refuses it.
func TestIntentRecordedWithProof(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			fx, watcher := watchedFixture(t, f, driver, true)
			count := func(query, id string) int { return fx.count(t, fx.q(query), id) }

			id, code := fx.enroll(t, citizen(), "citizen-auth")
			if a := fx.proof(t, id, wrongCode(code)); a.problem != "wrong-code" {
				t.Fatalf("a wrong code: %+v", a)
			}
			if n := count(`SELECT count(*) FROM certificates WHERE enrollment_id = $1`, id); n != 0 {
				t.Errorf("a wrong code recorded %d certificates", n)
			}
			if a := fx.proof(t, id, code); a.status != http.StatusOK || a.state != store.StateIssued {
				t.Fatalf("proof: %+v", a)
			}
			seen, prepared := watcher.last(t)
			// The wrong code's preparation, and the right one's.
			if want := (watchedIssuance{enrollment: id, recorded: true, state: store.StateApproved, intents: 1}); seen != want || prepared != 2 {
				t.Errorf("the CA was asked to sign %+v after %d preparations, want %+v after 2", seen, prepared, want)
			}
			if n := count(`SELECT count(*) FROM certificates WHERE enrollment_id = $1 AND der IS NOT NULL`, id); n != 1 {
				t.Errorf("%d certificates for the enrollment, want 1", n)
			}

			officers := fx.proved(t, citizen(), "citizen-sign")
			if n := count(`SELECT count(*) FROM certificates WHERE enrollment_id = $1`, officers); n != 0 {
				t.Errorf("a proof awaiting officers recorded %d certificates", n)
			}
			if _, prepared := watcher.last(t); prepared != 2 {
				t.Errorf("the CA prepared %d certificates, want still 2", prepared)
			}

			key := newKey(t)
			first, code := fx.enrollKey(t, key)
			if a := fx.proof(t, first, code); a.state != store.StateIssued {
				t.Fatalf("first certificate of the key: %+v", a)
			}
			c, err := fx.db.CertificateOfEnrollment(t.Context(), first)
			if err != nil {
				t.Fatal(err)
			}
			second, code := fx.enrollKey(t, key)
			watcher.afterNextPrepare(func() {
				if err := fx.ca.Revoke(context.Background(), c.Serial, 1, "test"); err != nil {
					t.Error(err)
				}
			})
			if a := fx.proof(t, second, code); a.status != http.StatusUnprocessableEntity || a.problem != "issuance-failed" {
				t.Errorf("proof as the key was reported compromised: %+v", a)
			}
			seen, _ = watcher.last(t)
			if want := (watchedIssuance{enrollment: second, recorded: false, state: store.StateApproved}); seen != want {
				t.Errorf("the CA was asked %+v, want %+v", seen, want)
			}
			e, err := fx.db.Enrollment(t.Context(), second)
			if err != nil || e.State != store.StateFailed || !strings.Contains(e.StateReason, "keyCompromise") {
				t.Errorf("the enrollment of a compromised key: %s %q (%v)", e.State, e.StateReason, err)
			}
			if n := count(`SELECT count(*) FROM certificates WHERE enrollment_id = $1`, second); n != 0 {
				t.Errorf("%d certificate rows for the compromised key's enrollment", n)
			}
		})
	}
}

// TestProofStopBeforeSignature: a stop after the proof's commit, which
// carried the intent, and before the HSM signed leaves the enrollment
// approved beside its intent. At the next start the CA's recovery revokes
// the intent's serial (nothing was signed for it) and Resume has the
// enrollment certified anew: issued, with one good certificate.
func TestProofStopBeforeSignature(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	errStop := errors.New("simulated stop")
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			var stopped atomic.Bool
			fx, watcher := watchedFixture(t, f, driver, true, func(d *ra.Deps) {
				deps := f.Deps(d.Store, d.Audit)
				deps.Fault = func(point string) error {
					if point == ca.FaultAfterIntent && stopped.CompareAndSwap(false, true) {
						return errStop
					}
					return nil
				}
				stopping, err := ca.New(deps)
				if err != nil {
					t.Fatal(err)
				}
				d.CA, d.Now = stopping, clk.Now
			})
			ctx := t.Context()
			id, code := fx.enroll(t, citizen(), "citizen-auth")
			if a := fx.proof(t, id, code); a.status != http.StatusOK || a.state != store.StateApproved {
				t.Fatalf("proof as the CA stops: %+v", a)
			}
			if !stopped.Load() {
				t.Fatal("the CA did not stop")
			}
			if seen, _ := watcher.last(t); !seen.recorded {
				t.Fatalf("the CA was asked %+v: the intent did not come with the proof", seen)
			}
			unsigned, err := fx.db.UnsignedCertificates(ctx)
			if err != nil || len(unsigned) != 1 || unsigned[0].EnrollmentID != id {
				t.Fatalf("intents after the stop: %+v (%v)", unsigned, err)
			}

			// The next start.
			if n, err := fx.ca.Recover(ctx, 0); err != nil || n != 1 {
				t.Fatalf("recovery: %d, %v", n, err)
			}
			clk.Add(2 * time.Minute)
			if n, err := fx.svc.Resume(ctx, time.Minute); err != nil || n != 1 {
				t.Fatalf("resume: %d, %v", n, err)
			}
			e, err := fx.db.Enrollment(ctx, id)
			if err != nil || e.State != store.StateIssued {
				t.Fatalf("after resume: %s (%v)", e.State, err)
			}
			c, err := fx.db.CertificateOfEnrollment(ctx, id)
			if err != nil || c.Status != store.StatusGood || bytes.Equal(c.Serial, unsigned[0].Serial) {
				t.Fatalf("the enrollment's certificate: %x %s (%v); the stopped intent was %x", c.Serial, c.Status, err, unsigned[0].Serial)
			}
			stale, err := fx.db.Certificate(ctx, unsigned[0].IssuerID, unsigned[0].Serial)
			if err != nil || stale.Status != store.StatusRevoked || stale.DER != nil {
				t.Errorf("the stopped intent: %s, %d bytes (%v), want revoked and unsigned", stale.Status, len(stale.DER), err)
			}
			if rep, err := audit.Verify(ctx, fx.db, "test", nil); err != nil || !rep.OK() {
				t.Errorf("audit log: %+v, %v", rep, err)
			}
		})
	}
}

// TestRateLimitedProofPreparesNothing: the CA prepares an auto-approved
// certificate whatever the code given, so the time of an answer does not
// tell a right code from a wrong one; and nothing while the person's
// wrong codes are rate-limited, when no code is checked: a guesser then
// learns nothing either way.
func TestRateLimitedProofPreparesNothing(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { rateLimitedProofPreparesNothing(t, f, driver) })
	}
}

func rateLimitedProofPreparesNothing(t *testing.T, f catest.Fixture, driver string) {
	clk := &clock{base: time.Now().UTC()} // the bucket refills only when told
	fx, watcher := watchedFixture(t, f, driver, true, func(d *ra.Deps) {
		d.Now = clk.Now
		d.IdentifierLimit = &store.Bucket{Rate: 3 / time.Minute.Seconds(), Burst: 3}
	})
	first, firstCode := fx.enroll(t, citizen(), "citizen-auth")
	for i := range 3 {
		answer{status: 422, problem: "wrong-code"}.check(t, fmt.Sprintf("wrong code %d", i+1), fx.proof(t, first, wrongCode(firstCode)))
	}
	if n := watcher.preparations(); n != 3 {
		t.Errorf("three wrong codes had the CA prepare %d certificates, want 3, as a right code would", n)
	}
	second, secondCode := fx.enroll(t, citizen(), "citizen-auth")
	answer{status: 429, problem: "rate-limited"}.check(t, "the right code past the limit", fx.proof(t, second, secondCode))
	answer{status: 429, problem: "rate-limited"}.check(t, "a wrong code past the limit", fx.proof(t, second, wrongCode(secondCode)))
	if n := watcher.preparations(); n != 3 {
		t.Errorf("codes refused unchecked had the CA prepare %d more certificates", n-3)
	}
	clk.Add(time.Minute)
	answer{status: 200, state: store.StateIssued}.check(t, "the right code, once the bucket refilled", fx.proof(t, second, secondCode))
	if seen, n := watcher.last(t); !seen.recorded || n != 4 {
		t.Errorf("the issuance: %+v after %d preparations, want its intent recorded after 4", seen, n)
	}

	// A code past its time is not checked either: nothing to prepare.
	third, thirdCode := fx.enroll(t, citizen(), "citizen-auth")
	clk.Add(11 * time.Minute) // code_ttl is 10m
	answer{status: 410, problem: "code-expired"}.check(t, "the right code, expired", fx.proof(t, third, thirdCode))
	if n := watcher.preparations(); n != 4 {
		t.Errorf("an expired code had the CA prepare %d certificates", n-4)
	}
}

// TestOnePreparationAtATime: while the CA prepares the certificate of one
// proof of an enrollment, another proof of it prepares nothing, so a flood
// of codes for one enrollment costs the CA one preparation at a time.
func TestOnePreparationAtATime(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx, watcher := watchedFixture(t, f, "sqlite", true)
	id, code := fx.enroll(t, citizen(), "citizen-auth")
	wrong := wrongCode(code)
	started, release := make(chan struct{}), make(chan struct{})
	watcher.afterNextPrepare(func() { close(started); <-release })
	first := make(chan answer, 1)
	go func() { first <- fx.proof(t, id, wrong) }()
	<-started
	answer{status: 422, problem: "wrong-code"}.check(t, "a code while another's certificate is being prepared", fx.proof(t, id, wrong))
	prepared := watcher.preparations()
	close(release)
	answer{status: 422, problem: "wrong-code"}.check(t, "the code whose certificate was prepared", <-first)
	if prepared != 1 {
		t.Errorf("two proofs at once prepared %d certificates, want 1", prepared)
	}
	answer{status: 200, state: store.StateIssued}.check(t, "the right code after", fx.proof(t, id, code))
}

// TestIntentWithProofOff: without Deps.IntentWithProof (PostgreSQL's
// setting) the proof prepares nothing, and the CA records the intent
// itself.
func TestIntentWithProofOff(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx, watcher := watchedFixture(t, f, "sqlite", false)
	id, code := fx.enroll(t, citizen(), "citizen-auth")
	if a := fx.proof(t, id, code); a.status != http.StatusOK || a.state != store.StateIssued {
		t.Fatalf("proof: %+v", a)
	}
	if seen, prepared := watcher.last(t); seen.recorded || seen.intents != 0 || prepared != 0 {
		t.Errorf("the CA was asked %+v after %d preparations, want no intent before it and none prepared", seen, prepared)
	}
}

// TestKeyCompromisedWhileSigning: an officer's approval whose certificate's
// key is reported compromised (in another certificate of it) while the HSM
// signs ends at once: the intent revoked meanwhile is not completed, and
// the enrollment fails saying why, rather than waiting, approved, for a
// retry that the blocked key would refuse; no certificate of it is good.
func TestKeyCompromisedWhileSigning(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			fx := newRAFixture(t, f, driver)
			id := fx.proved(t, citizen(), "citizen-sign")
			node, stalled, release := fx.stallingNode(t, f)
			acted := make(chan error, 1)
			go func() {
				_, err := node.Act(context.Background(), string(signAction(t, fx.officer, approve(id), time.Now())))
				acted <- err
			}()
			<-stalled
			var serial []byte
			if err := fx.raw.QueryRowContext(t.Context(), fx.q(`SELECT serial FROM certificates WHERE enrollment_id = $1 AND der IS NULL`), id).Scan(&serial); err != nil {
				t.Fatal(err)
			}
			if err := fx.ca.Revoke(t.Context(), serial, 1, "test"); err != nil {
				t.Fatal(err)
			}
			close(release)
			<-acted
			e, err := fx.db.Enrollment(t.Context(), id)
			if err != nil || e.State != store.StateFailed || !strings.Contains(e.StateReason, "compromised") {
				t.Errorf("the enrollment: %s %q (%v); want failed, saying the key was reported compromised", e.State, e.StateReason, err)
			}
			if n := fx.count(t, fx.q(`SELECT count(*) FROM certificates WHERE enrollment_id = '`+id+`' AND status = 'good'`)); n != 0 {
				t.Errorf("%d good certificates of the enrollment", n)
			}
		})
	}
}
