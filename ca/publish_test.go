package ca_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

// clock is a settable clock for day-scale times: the CA, its OCSP signer
// and its CRL builder all read it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// publishing is a CA and its publisher over one store, on clk.
type publishing struct {
	f         catest.Fixture
	db        *store.DB
	clk       *clock
	deps      ca.Deps
	authority *ca.CA
	pub       *ca.Publisher
}

// newPublishing records the issuer in db and builds the CA (with fault as
// its Deps.Fault) and a publisher with cfg.
func newPublishing(t *testing.T, f catest.Fixture, db *store.DB, clk *clock, cfg ca.PublishConfig, fault func(string) error) *publishing {
	t.Helper()
	f.PutIssuer(t, db)
	return addNode(t, f, db, clk, cfg, fault)
}

// addNode is another CA node over the same store.
func addNode(t *testing.T, f catest.Fixture, db *store.DB, clk *clock, cfg ca.PublishConfig, fault func(string) error) *publishing {
	t.Helper()
	signer, err := ocspsign.New(0, 0, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(time.Now)
	deps := f.Deps(db, log)
	deps.Now, deps.OCSP, deps.Fault = clk.Now, signer, fault
	authority, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	builder, err := crl.New(db, log, f.Linter, crl.Config{}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	pub, err := ca.NewPublisher(authority, builder, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &publishing{f: f, db: db, clk: clk, deps: deps, authority: authority, pub: pub}
}

func (p *publishing) issue(t *testing.T) *x509.Certificate {
	t.Helper()
	cert, err := p.authority.Issue(t.Context(), ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// run starts Run and returns a function that cancels it and checks that it
// returned nil; the test's cleanup calls it too, so Run never outlives the
// test (and its logger).
func (p *publishing) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.pub.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

func latestCRL(t *testing.T, db *store.DB) (store.CRL, *x509.RevocationList) {
	t.Helper()
	c, err := db.LatestCRL(t.Context(), "issuing")
	if errors.Is(err, store.ErrNotFound) {
		return store.CRL{}, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	return c, parsed
}

func listed(rl *x509.RevocationList) map[string]int {
	out := map[string]int{}
	if rl != nil {
		for _, e := range rl.RevokedCertificateEntries {
			out[e.SerialNumber.Text(16)] = e.ReasonCode
		}
	}
	return out
}

func TestPublishConfig(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	authority := f.CA(t, db, audit.New(time.Now))
	weekly, err := crl.New(db, audit.New(time.Now), f.Linter, crl.Config{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  ca.PublishConfig
		want []string // substrings of the error, one per problem; none: valid
	}{
		{"defaults", ca.PublishConfig{}, nil},
		{"weekly at most", ca.PublishConfig{Republish: 8 * 24 * time.Hour}, []string{"at least weekly"}},
		{"republish within the CRL validity", ca.PublishConfig{Republish: 7 * 24 * time.Hour}, []string{"less than the CRL validity"}},
		{"check within republish", ca.PublishConfig{Republish: time.Hour, CRLCheck: 2 * time.Hour}, []string{"check interval 2h0m0s is outside"}},
		{"OCSP scan at most an hour", ca.PublishConfig{OCSPScan: 2 * time.Hour, UnansweredScan: 3 * time.Hour}, []string{"OCSP scan interval 2h0m0s"}},
		{"unanswered scan not shorter", ca.PublishConfig{OCSPScan: 10 * time.Minute, UnansweredScan: time.Minute}, []string{"unanswered scan interval"}},
		{"page size", ca.PublishConfig{PageSize: 10001}, []string{"page size 10001"}},
		{"recover grace not too short", ca.PublishConfig{RecoverGrace: time.Second}, []string{"recover grace 1s is outside"}},
		{"recover grace not too long", ca.PublishConfig{RecoverGrace: 2 * time.Hour}, []string{"recover grace 2h0m0s is outside"}},
		{"every problem at once", ca.PublishConfig{MinInterval: -time.Second, PageSize: -1, Republish: 8 * 24 * time.Hour},
			[]string{"min interval -1s", "page size -1", "at least weekly", "less than the CRL validity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.NewPublisher(authority, weekly, tc.cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := ca.NewPublisher(nil, weekly, ca.PublishConfig{}); err == nil {
		t.Error("a publisher without a CA was accepted")
	}
}

// TestPublisherCoalescesRevocations: a burst of revocations while Run runs
// gives at most two CRL builds (one at once, one MinInterval later with the
// rest), and the latest CRL lists every serial.
func TestPublisherCoalescesRevocations(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	const minInterval = time.Second
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		p := newPublishing(t, f, db, newClock(time.Now().UTC().Truncate(time.Second)), ca.PublishConfig{
			MinInterval: minInterval, CRLCheck: time.Hour, OCSPScan: time.Hour}, nil)
		// The clock stands still: only status changes cause builds.
		var serials []*big.Int
		for range 20 {
			serials = append(serials, p.issue(t).SerialNumber)
		}
		stop := p.run(t)
		testenv.WaitFor(t, "the CRL built at start", func() bool { c, _ := latestCRL(t, db); return c.Number > 0 })
		first, rl := latestCRL(t, db)
		if n := len(rl.RevokedCertificateEntries); n != 0 {
			t.Fatalf("the first CRL lists %d serials", n)
		}

		start := time.Now()
		for _, s := range serials {
			if err := p.authority.Revoke(t.Context(), s.Bytes(), 1, "officer:test"); err != nil {
				t.Fatal(err)
			}
		}
		burst := time.Since(start)
		testenv.WaitFor(t, "a CRL listing every revoked serial", func() bool {
			_, rl := latestCRL(t, db)
			return len(listed(rl)) == len(serials)
		})
		// Any build still to come is due within MinInterval.
		time.Sleep(minInterval + minInterval/2)
		stop()

		last, rl := latestCRL(t, db)
		builds := int(last.Number - first.Number)
		// At most one build per MinInterval, plus the one at once: two for
		// a burst shorter than MinInterval, as on any ordinary machine.
		if allowed := 2 + int(burst/minInterval); builds < 1 || builds > allowed {
			t.Errorf("%d CRL builds for a burst of %d revocations in %s, want 1..%d", builds, len(serials), burst, allowed)
		}
		got := listed(rl)
		for _, s := range serials {
			if reason, ok := got[s.Text(16)]; !ok || reason != 1 {
				t.Errorf("serial %x: listed %v with reason %d", s, ok, reason)
			}
		}
		if d := rl.NextUpdate.Sub(rl.ThisUpdate); d > crl.MaxValidity || rl.Number.Int64() != last.Number {
			t.Errorf("CRL #%d: validity %s", rl.Number, d)
		}
	})
}

// TestPublisherRepublishes: a CRL is republished once the stored latest one
// is Republish old, by the one-shot method and by Run's timer, never
// before; a fresh publisher (a restart, another node) judges from the
// store.
func TestPublisherRepublishes(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		cfg := ca.PublishConfig{CRLCheck: 10 * time.Millisecond, OCSPScan: time.Hour}
		p := newPublishing(t, f, db, clk, cfg, nil)

		c1, published, err := p.pub.RepublishCRL(ctx)
		if err != nil || !published || c1.Number != t0.UnixNano() {
			t.Fatalf("first CRL: #%d published %v, %v", c1.Number, published, err)
		}
		clk.Set(t0.Add(24*time.Hour - time.Second))
		restarted := addNode(t, f, db, clk, cfg, nil)
		for _, pub := range []*ca.Publisher{p.pub, restarted.pub} {
			if c, published, err := pub.RepublishCRL(ctx); err != nil || published {
				t.Errorf("republished a CRL not yet a day old: #%d, %v", c.Number, err)
			}
		}
		clk.Set(t0.Add(24 * time.Hour))
		c2, published, err := restarted.pub.RepublishCRL(ctx)
		if err != nil || !published || c2.Number <= c1.Number || !c2.ThisUpdate.Equal(clk.Now()) {
			t.Fatalf("CRL a day later: #%d at %s published %v, %v", c2.Number, c2.ThisUpdate, published, err)
		}

		// Run builds at start only when the latest CRL may miss a
		// revocation: none here...
		stop := p.run(t)
		time.Sleep(100 * time.Millisecond) // ten checks
		if c, _ := latestCRL(t, db); c.Number != c2.Number {
			t.Errorf("CRL #%d built at start with nothing new to list", c.Number)
		}
		stop()
		// ...but one here: another node revoked, and this one never got
		// the signal (as after a crash between revocation and CRL).
		victim := restarted.issue(t)
		if err := restarted.authority.Revoke(ctx, victim.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
			t.Fatal(err)
		}
		// A second on, so that the CRL built at start is dated after the
		// revocation: one of the same second may miss it (times are kept
		// to the second), and Run would build again MinInterval later.
		clk.Set(t0.Add(24*time.Hour + time.Second))
		stop = p.run(t)
		testenv.WaitFor(t, "the CRL built at start", func() bool { c, _ := latestCRL(t, db); return c.Number > c2.Number })
		started, rl := latestCRL(t, db)
		if len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Cmp(victim.SerialNumber) != 0 {
			t.Errorf("the CRL built at start lists %v", rl.RevokedCertificateEntries)
		}
		time.Sleep(100 * time.Millisecond) // ten checks
		if c, _ := latestCRL(t, db); c.Number != started.Number {
			t.Errorf("CRL #%d published with the clock standing still (after #%d)", c.Number, started.Number)
		}
		// A day after the CRL built at start.
		republishAt := t0.Add(48*time.Hour + time.Second)
		clk.Set(republishAt)
		testenv.WaitFor(t, "a republished CRL", func() bool { c, _ := latestCRL(t, db); return c.Number > started.Number })
		stop()
		last, rl := latestCRL(t, db)
		if last.Number <= started.Number || !rl.ThisUpdate.Equal(republishAt) {
			t.Errorf("republished CRL #%d at %s, want a number above #%d at %s", last.Number, rl.ThisUpdate, started.Number, republishAt)
		}
		if d := rl.NextUpdate.Sub(rl.ThisUpdate); d > crl.MaxValidity {
			t.Errorf("nextUpdate %s after thisUpdate", d)
		}
	})
}

// TestPublishersShareAStore: two nodes publishing at once never store two
// CRLs with one number; the loser sees store.ErrConflict.
func TestPublishersShareAStore(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		clk := newClock(time.Now().UTC().Truncate(time.Second))
		nodes := []*publishing{newPublishing(t, f, db, clk, ca.PublishConfig{}, nil)}
		nodes = append(nodes, addNode(t, f, db, clk, ca.PublishConfig{}, nil))
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			published = map[int64]int{}
		)
		for i := range 6 {
			wg.Go(func() {
				c, err := nodes[i%2].pub.PublishCRL(context.Background())
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					published[c.Number]++
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("PublishCRL: %v", err)
				}
			})
		}
		wg.Wait()
		last, _ := latestCRL(t, db)
		if len(published) == 0 || published[last.Number] != 1 || slices.Max(slices.Collect(maps.Keys(published))) != last.Number {
			t.Errorf("published %v, latest #%d", published, last.Number)
		}
		for n, times := range published {
			if times != 1 {
				t.Errorf("CRL #%d published %d times", n, times)
			}
		}
	})
}

// putSigned records a certificate row directly: signed (with stand-in DER)
// and, when answered, with a response signed now.
func (p *publishing) putSigned(t *testing.T, serial byte, notBefore, notAfter time.Time, answered bool) store.Certificate {
	t.Helper()
	ctx := t.Context()
	c := store.Certificate{IssuerID: "issuing", Serial: []byte{0x7f, serial}, Profile: "citizen-auth", NotBefore: notBefore, NotAfter: notAfter,
		TBS: []byte{0x30, 0x00}, Status: store.StatusGood, CreatedAt: notBefore}
	err := p.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertCertificateIntent(ctx, c); err != nil {
			return err
		}
		if err := tx.SetCertificateDER(ctx, "issuing", c.Serial, []byte{0x30, 0x01, serial}, notBefore); err != nil {
			return err
		}
		if !answered {
			return nil
		}
		_, err := p.deps.OCSP.SignAndStore(ctx, tx, p.deps.Responder, c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *publishing) response(t *testing.T, serial []byte) (store.OCSPResponse, *ocsp.Response) {
	t.Helper()
	r, err := p.db.OCSPResponse(t.Context(), "issuing", serial)
	if err != nil {
		t.Fatalf("response for %x: %v", serial, err)
	}
	parsed, err := ocsp.ParseResponse(r.DER, p.f.Issuer.Certificate)
	if err != nil {
		t.Fatalf("response for %x: %v", serial, err)
	}
	if parsed.SerialNumber.Cmp(new(big.Int).SetBytes(serial)) != 0 {
		t.Fatalf("response for %x is for serial %x", serial, parsed.SerialNumber)
	}
	return r, parsed
}

// mustStored is the stored response's DER for serial.
func mustStored(t *testing.T, p *publishing, serial []byte) []byte {
	t.Helper()
	r, _ := p.response(t, serial)
	return r.DER
}

// archiveCutoff is the archiveCutoff singleExtension (RFC 6960 §4.4.4) of
// a response, nil when it has none.
func archiveCutoff(t *testing.T, der []byte) *time.Time {
	t.Helper()
	r, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 6}) {
			var cutoff time.Time
			if _, err := asn1.UnmarshalWithParams(e.Value, &cutoff, "generalized"); err != nil {
				t.Fatalf("archiveCutoff: %v", err)
			}
			return &cutoff
		}
	}
	return nil
}

// refreshEvents returns the "refreshed" counts of the ocsp.refresh audit
// events, in order.
func refreshEvents(t *testing.T, db *store.DB) []int {
	t.Helper()
	var out []int
	err := db.ScanAuditEvents(t.Context(), 0, func(e store.AuditEvent) error {
		if e.Action != "ocsp.refresh" {
			return nil
		}
		var d struct{ Refreshed int }
		if err := json.Unmarshal(e.Details, &d); err != nil {
			return err
		}
		out = append(out, d.Refreshed)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefreshOCSP moves the clock through four days and checks that each
// pass re-signs exactly the responses whose refresh point came (half-life of
// 4-day responses, less the one-minute scan lookahead), answers
// certificates without a response (a recovered intent, a signed one),
// keeps an expired certificate answerable (re-signed with archiveCutoff),
// and leaves alone fresh responses and issuances in flight. OpenSSL judges
// refreshed responses.
func TestRefreshOCSP(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	errCrash := errors.New("simulated crash")
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		var crash bool
		p := newPublishing(t, f, db, clk, ca.PublishConfig{PageSize: 1}, func(point string) error {
			if crash && point == ca.FaultAfterIntent {
				return errCrash
			}
			return nil
		})
		refresh := func(want int) {
			t.Helper()
			n, err := p.pub.RefreshOCSP(ctx)
			if err != nil || n != want {
				t.Fatalf("at t0+%s: refreshed %d, %v; want %d", clk.Now().Sub(t0), n, err, want)
			}
		}
		intent := func() []byte {
			t.Helper()
			before := map[string]bool{}
			unsigned, _ := db.UnsignedCertificates(ctx)
			for _, c := range unsigned {
				before[string(c.Serial)] = true
			}
			crash = true
			defer func() { crash = false }()
			if _, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); !errors.Is(err, errCrash) {
				t.Fatalf("Issue = %v, want the crash", err)
			}
			unsigned, _ = db.UnsignedCertificates(ctx)
			for _, c := range unsigned {
				if !before[string(c.Serial)] {
					return c.Serial
				}
			}
			t.Fatal("no new intent")
			return nil
		}

		a := p.issue(t).SerialNumber.Bytes()
		recovered := intent()
		if n, err := p.authority.Recover(ctx, 0); err != nil || n != 1 {
			t.Fatalf("Recover = %d, %v", n, err)
		}
		expiring := p.putSigned(t, 1, t0.AddDate(0, -1, 0), t0.Add(24*time.Hour), true)
		expiringBefore, _ := p.response(t, expiring.Serial)

		clk.Set(t0.Add(24 * time.Hour))
		b := p.issue(t).SerialNumber.Bytes()
		bBefore, _ := p.response(t, b)
		unanswered := p.putSigned(t, 2, t0, t0.AddDate(1, 0, 0), false)
		inFlight := intent()

		// Day 1: the certificate without a response, and the one that
		// expired an hour ago: its response, signed before the expiry for
		// 4 days, is re-signed at once for the 10 days an expired
		// certificate's response lasts, with archiveCutoff.
		clk.Set(t0.Add(25 * time.Hour))
		refresh(2)
		if _, r := p.response(t, unanswered.Serial); r.Status != ocsp.Good || !r.ThisUpdate.Equal(clk.Now()) {
			t.Errorf("unanswered certificate: status %d at %s", r.Status, r.ThisUpdate)
		}
		expiredAt := clk.Now()
		if _, r := p.response(t, expiring.Serial); archiveCutoff(t, expiringBefore.DER) != nil {
			t.Error("a response signed before the expiry has archiveCutoff")
		} else if cutoff := archiveCutoff(t, mustStored(t, p, expiring.Serial)); r.Status != ocsp.Good || !r.ThisUpdate.Equal(expiredAt) ||
			r.NextUpdate.Sub(r.ThisUpdate) != ocspsign.MaxValidity || cutoff == nil || !cutoff.Equal(f.Issuer.Certificate.NotBefore) {
			t.Errorf("expired certificate: status %d, %s..%s, archiveCutoff %v (issuer from %s)",
				r.Status, r.ThisUpdate, r.NextUpdate, cutoff, f.Issuer.Certificate.NotBefore)
		} else {
			judge(t, openssl, f, mustStored(t, p, expiring.Serial))
		}
		// A second before A's refresh point (2 days less the lookahead):
		// nothing.
		clk.Set(t0.Add(48*time.Hour - time.Minute - time.Second))
		refresh(0)
		// At it: A and the recovered intent; B is a day younger, and the
		// expired certificate's response is due 4 days after it was
		// signed.
		clk.Set(t0.Add(48*time.Hour - time.Minute))
		refresh(2)
		refresh(0)
		if stored, r := p.response(t, a); r.Status != ocsp.Good || !r.ThisUpdate.Equal(clk.Now()) ||
			r.NextUpdate.Sub(r.ThisUpdate) != ocspsign.DefaultValidity || !stored.UpdatedAt.Equal(clk.Now()) {
			t.Errorf("A: status %d, %s..%s, updated %s", r.Status, r.ThisUpdate, r.NextUpdate, stored.UpdatedAt)
		} else {
			judge(t, openssl, f, stored.DER)
		}
		if _, r := p.response(t, recovered); r.Status != ocsp.Revoked || r.RevocationReason != ca.ReasonCessationOfOperation ||
			!r.RevokedAt.Equal(t0) || !r.ThisUpdate.Equal(clk.Now()) {
			t.Errorf("recovered intent: status %d reason %d revoked %s, thisUpdate %s", r.Status, r.RevocationReason, r.RevokedAt, r.ThisUpdate)
		}
		if stored, _ := p.response(t, b); !bytes.Equal(stored.DER, bBefore.DER) {
			t.Error("B's fresh response was re-signed")
		}
		if _, r := p.response(t, expiring.Serial); !r.ThisUpdate.Equal(expiredAt) {
			t.Errorf("the expired certificate's response was re-signed a day after its last: thisUpdate %s", r.ThisUpdate)
		}
		if _, err := db.OCSPResponse(ctx, "issuing", inFlight); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an issuance in flight got a response: %v", err)
		}
		// Day 3: B.
		clk.Set(t0.Add(72*time.Hour - time.Minute))
		refresh(1)
		if _, r := p.response(t, b); !r.ThisUpdate.Equal(clk.Now()) {
			t.Errorf("B not re-signed: thisUpdate %s", r.ThisUpdate)
		}

		// One event per page that stored something (pages of one here).
		if got := refreshEvents(t, db); len(got) != 5 || slices.Max(got) != 1 {
			t.Errorf("ocsp.refresh events %v, want five of one", got)
		}
		if r, err := audit.Verify(ctx, db, "test", nil); err != nil || !r.OK() {
			t.Errorf("audit log: %+v, %v", r, err)
		}
		// The expired certificate's response is re-signed 4 days after it
		// was signed (less the lookahead), not before.
		for _, tc := range []struct {
			at     time.Duration
			signed bool
		}{{96*time.Hour - time.Minute - time.Second, false}, {96*time.Hour - time.Minute, true}} {
			clk.Set(expiredAt.Add(tc.at))
			if _, err := p.pub.RefreshOCSP(ctx); err != nil {
				t.Fatal(err)
			}
			if _, r := p.response(t, expiring.Serial); r.ThisUpdate.Equal(clk.Now()) != tc.signed {
				t.Errorf("expired certificate at its signing + %s: thisUpdate %s, re-signed %v", tc.at, r.ThisUpdate, tc.signed)
			}
		}
	})
}

// TestRefreshOCSPExpiredBudget: the expired certificates' due responses get
// a bounded share of each pass (here none beyond one page), and their walk
// goes on where it stopped at the next pass, while every pass re-signs all
// the live ones first: a long history never delays a live answer. Expired
// ones whose responses are close to their end are re-signed whatever the
// budget.
func TestRefreshOCSPExpiredBudget(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	t0 := time.Now().UTC().Truncate(time.Second)
	clk := newClock(t0)
	p := newPublishing(t, f, db, clk, ca.PublishConfig{PageSize: 1, OCSPScan: time.Nanosecond, UnansweredScan: time.Nanosecond}, nil)
	var live, expired [][]byte
	for i := range 2 {
		live = append(live, p.putSigned(t, byte(i), t0.AddDate(0, -1, 0), t0.AddDate(1, 0, 0), true).Serial)
	}
	for i := range 3 {
		expired = append(expired, p.putSigned(t, byte(0x10+i), t0.AddDate(-2, 0, 0), t0.AddDate(0, 0, -1), true).Serial)
	}
	// Seven days on every response is due (the expired ones', signed for
	// 10 days, since the sixth).
	later := t0.Add(7 * 24 * time.Hour)
	for pass, want := range []int{3, 1, 1, 0} {
		clk.Set(later.Add(time.Duration(pass) * time.Second))
		n, err := p.pub.RefreshOCSP(t.Context())
		if err != nil || n != want {
			t.Fatalf("pass %d: %d stored, %v; want %d", pass+1, n, err, want)
		}
		for _, serial := range live {
			if _, r := p.response(t, serial); r.ThisUpdate.Before(later) {
				t.Fatalf("pass %d: live certificate %x not re-signed first", pass+1, serial)
			}
		}
	}
	for _, serial := range expired {
		if stored, r := p.response(t, serial); r.ThisUpdate.Before(later) || archiveCutoff(t, stored.DER) == nil {
			t.Errorf("expired certificate %x: thisUpdate %s, archiveCutoff %v", serial, r.ThisUpdate, archiveCutoff(t, stored.DER))
		}
	}
	// Eight and a half days on, the expired ones' responses have no more
	// left than a live one's when it is due: all are re-signed in the
	// next pass, whatever the budget, beside the two live ones.
	urgent := later.Add(8*24*time.Hour + 12*time.Hour)
	clk.Set(urgent)
	if n, err := p.pub.RefreshOCSP(t.Context()); err != nil || n != 5 {
		t.Fatalf("a pass with every expired response close to its end: %d stored, %v; want 5", n, err)
	}
	for _, serial := range expired {
		if _, r := p.response(t, serial); !r.ThisUpdate.Equal(urgent) {
			t.Errorf("expired certificate %x close to its response's end not re-signed: thisUpdate %s", serial, r.ThisUpdate)
		}
	}
}

// judge has OpenSSL verify a response: signed by the delegated responder,
// whose certificate chains through the issuing CA to the root.
func judge(t *testing.T, openssl string, f catest.Fixture, der []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resp.der")
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "ocsp", "-respin", path, "-issuer", f.CAPEM, "-CAfile", f.RootPEM,
		"-verify_other", f.CAPEM, "-resp_text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), "Cert Status: good") {
		t.Errorf("openssl ocsp: %v\n%s", err, out)
	}
}

// TestRefreshNeverOverwritesARevocation revokes a certificate after the
// refresher signed its (good) response and before it stored it, on another
// CA node whose clock is a minute behind: the good response is newer, yet
// the revocation's response stays, and the pass counts only what it stored.
func TestRefreshNeverOverwritesARevocation(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		var (
			other  *publishing
			victim []byte
			raced  int
		)
		p := newPublishing(t, f, db, clk, ca.PublishConfig{}, func(point string) error {
			if point != ca.FaultRefreshSigned || victim == nil {
				return nil
			}
			raced++
			err := other.authority.Revoke(ctx, victim, 1, "officer:test")
			victim = nil
			return err
		})
		target := p.issue(t).SerialNumber.Bytes()
		bystander := p.issue(t).SerialNumber.Bytes()

		clk.Set(t0.Add(3 * 24 * time.Hour))
		behind := newClock(clk.Now().Add(-time.Minute))
		other = addNode(t, f, db, behind, ca.PublishConfig{}, nil)
		victim = target
		n, err := p.pub.RefreshOCSP(ctx)
		if err != nil || n != 1 || raced != 1 {
			t.Fatalf("refreshed %d, %v (revocations in the race: %d); want 1", n, err, raced)
		}
		if _, r := p.response(t, target); r.Status != ocsp.Revoked || r.RevocationReason != 1 || !r.RevokedAt.Equal(behind.Now()) {
			t.Errorf("revoked certificate answers status %d reason %d (revoked at %s)", r.Status, r.RevocationReason, r.RevokedAt)
		}
		if _, r := p.response(t, bystander); r.Status != ocsp.Good || !r.ThisUpdate.Equal(clk.Now()) {
			t.Errorf("the other certificate: status %d at %s", r.Status, r.ThisUpdate)
		}
		if n, err := p.pub.RefreshOCSP(ctx); err != nil || n != 0 {
			t.Errorf("second pass refreshed %d, %v", n, err)
		}
	})
}

// TestRunNeedsItsIssuer: Run refuses to start for an issuer the store does
// not have, rather than logging failures forever.
func TestRunNeedsItsIssuer(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	p := addNode(t, f, db, newClock(time.Now()), ca.PublishConfig{}, nil)
	if err := p.pub.Run(t.Context()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Run without the issuer in the store: %v", err)
	}
}

// TestPublisherFindsOthersRevocations: a revocation another process made
// (sanad registry recheck, a CA node whose publisher is not running)
// signals no publisher; Run finds it at its next CRLCheck, newer than the
// latest CRL, and publishes it.
func TestPublisherFindsOthersRevocations(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		clk := newClock(time.Now().UTC().Truncate(time.Second))
		p := newPublishing(t, f, db, clk, ca.PublishConfig{MinInterval: 50 * time.Millisecond, CRLCheck: 100 * time.Millisecond, OCSPScan: time.Hour}, nil)
		other := addNode(t, f, db, clk, ca.PublishConfig{}, nil)
		cert := p.issue(t)
		stop := p.run(t)
		defer stop()
		testenv.WaitFor(t, "the CRL built at start", func() bool { c, _ := latestCRL(t, db); return c.Number > 0 })
		clk.Set(clk.Now().Add(2 * time.Second)) // the revocation comes after that CRL
		if err := other.authority.Revoke(t.Context(), cert.SerialNumber.Bytes(), 5, "recheck:test"); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "a CRL listing the other process's revocation", func() bool {
			_, rl := latestCRL(t, db)
			_, ok := listed(rl)[cert.SerialNumber.Text(16)]
			return ok
		})
	})
}

// TestRefreshStampedAsStored: a refreshed response is stamped (updated_at,
// the responders' sync cursor) when its page is stored, not when it was
// signed: a page stored long after its signatures (a slow HSM, a wait for
// the transaction) is still read by responders that synced meanwhile.
func TestRefreshStampedAsStored(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		const late = time.Minute
		p := newPublishing(t, f, db, clk, ca.PublishConfig{}, func(point string) error {
			if point == ca.FaultRefreshSigned {
				clk.Set(clk.Now().Add(late))
			}
			return nil
		})
		serial := p.issue(t).SerialNumber.Bytes()
		signedAt := t0.Add(3 * 24 * time.Hour)
		clk.Set(signedAt)
		if n, err := p.pub.RefreshOCSP(ctx); err != nil || n != 1 {
			t.Fatalf("refreshed %d, %v; want 1", n, err)
		}
		stored, err := db.OCSPResponse(ctx, "issuing", serial)
		if err != nil {
			t.Fatal(err)
		}
		if _, r := p.response(t, serial); !r.ThisUpdate.Equal(signedAt) || !stored.UpdatedAt.Equal(signedAt.Add(late)) {
			t.Errorf("refreshed response: thisUpdate %s, updated_at %s; want %s and %s", r.ThisUpdate, stored.UpdatedAt, signedAt, signedAt.Add(late))
		}
	})
}

// TestPruneCRLs: a CRL a newer one replaced is deleted from the store once
// its nextUpdate has passed (PublishConfig.KeepReplaced later, when set),
// with a crl.prune audit event naming its number; the latest is kept. Each
// crl.publish event keeps the SHA-256 of the CRL it published, so a pruned
// CRL shown later can still be matched to its publication.
func TestPruneCRLs(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Second)
	clk := newClock(t0)
	p := newPublishing(t, f, db, clk, ca.PublishConfig{}, nil)
	keeping := addNode(t, f, db, clk, ca.PublishConfig{KeepReplaced: 30 * 24 * time.Hour}, nil)
	first, err := p.pub.PublishCRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour))
	second, err := p.pub.PublishCRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prune := func(pub *ca.Publisher, want int64) {
		t.Helper()
		if n, err := pub.PruneCRLs(ctx); err != nil || n != want {
			t.Errorf("at %s: PruneCRLs = %d, %v; want %d", clk.Now().Sub(t0), n, err, want)
		}
	}
	prune(p.pub, 0) // the first is replaced, not expired
	clk.Set(first.NextUpdate.Add(time.Second))
	prune(keeping.pub, 0) // kept 30 days past its nextUpdate
	prune(p.pub, 1)
	prune(p.pub, 0)
	if n, err := db.CRLCount(ctx, "issuing"); err != nil || n != 1 {
		t.Errorf("CRLs stored after pruning: %d, %v; want 1", n, err)
	}
	if latest, err := db.LatestCRL(ctx, "issuing"); err != nil || latest.Number != second.Number {
		t.Errorf("latest CRL after pruning: #%d, %v; want #%d", latest.Number, err, second.Number)
	}
	clk.Set(second.NextUpdate.Add(time.Hour))
	prune(p.pub, 0) // expired, but the latest

	// Run prunes as it starts (and hourly after).
	clk.Set(t0.Add(2 * time.Hour))
	third, err := p.pub.PublishCRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(third.NextUpdate.Add(time.Second))
	if _, err := p.pub.PublishCRL(ctx); err != nil {
		t.Fatal(err)
	}
	stop := p.run(t)
	n, err := db.CRLCount(ctx, "issuing")
	for deadline := time.Now().Add(30 * time.Second); err == nil && n > 1 && time.Now().Before(deadline); n, err = db.CRLCount(ctx, "issuing") {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err != nil || n != 1 {
		t.Errorf("CRLs stored once Run started: %d, %v; want the latest alone", n, err)
	}

	events, err := db.ListAuditEvents(ctx, store.AuditFilter{Action: "crl.prune"})
	if err != nil || len(events) != 2 {
		t.Fatalf("crl.prune events: %d, %v; want two (the first CRL, then the two Run found)", len(events), err)
	}
	var pruned struct {
		Count int64 `json:"count"`
		First int64 `json:"first_number"`
		Last  int64 `json:"last_number"`
	}
	if err := json.Unmarshal(events[0].Details, &pruned); err != nil || pruned.Count != 1 || pruned.First != first.Number || pruned.Last != first.Number {
		t.Errorf("crl.prune event: %s (%v); want count 1 and #%d", events[0].Details, err, first.Number)
	}
	published, err := db.ListAuditEvents(ctx, store.AuditFilter{Action: "crl.publish"})
	if err != nil || len(published) < 2 {
		t.Fatalf("crl.publish events: %v, %v; want the first two and more", published, err)
	}
	for i, c := range []store.CRL{first, second} {
		sum := sha256.Sum256(c.DER)
		if !strings.Contains(string(published[i].Details), `"crl_sha256":"`+hex.EncodeToString(sum[:])+`"`) {
			t.Errorf("crl.publish event of #%d: %s; want its SHA-256", c.Number, published[i].Details)
		}
	}
}
