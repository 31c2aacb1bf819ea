package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestNextSigner: which OCSP signer a running node takes for an issuing CA
// (checkSigners, ca.signer_check_interval). A signer added that lasts
// longer is taken; with current the best, nothing changes. A better one
// whose key is not on this node's token, or that take refuses, is passed
// over and named while current stays, as is one not valid yet; revoked,
// current is replaced by the next preferred signer whose key is here and
// that take accepts, and with none left it is reported revoked (the CA
// retires it), a signer record that cannot be read notwithstanding.
func TestNextSigner(t *testing.T) {
	ctx := t.Context()
	f := newSignerFixture(t)
	tok, db, now, issuing, issuingKey, key := f.tok, f.db, f.now, f.issuing, f.issuingKey, f.key
	s := &service{db: db, token: tok, now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var signers []store.Issuer
	// signer records an OCSP signer lasting days, among the issuing CA's
	// certificates, its key labelled label (on the token if onToken).
	signer := func(serial int64, label string, days int, onToken bool) *x509.Certificate {
		t.Helper()
		var pub crypto.PublicKey
		if onToken {
			pub = key(label).Public()
		} else { // certified elsewhere: no key of that label on this node's token
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			pub = k.Public()
		}
		c, is := f.certifySigner(t, "issuing", issuing, issuingKey, serial, label, now, days, pub)
		signers = append(signers, is)
		return c
	}
	revoke := func(c *x509.Certificate) {
		t.Helper()
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", c.SerialNumber.Bytes(), now, 1, now)
		}); err != nil {
			t.Fatal(err)
		}
	}
	// refuse names the signers take refuses (as ca.CA.UseResponder refuses
	// one that does not fit the issuing CA).
	refuse := map[string]bool{}
	next := func(current *x509.Certificate) signerCheck {
		t.Helper()
		c := nextSigner(ctx, s, "issuing", issuing, signers, current, func(r ocspsign.Responder) error {
			if refuse[r.Certificate.Subject.CommonName] {
				return errors.New("refused by take")
			}
			return nil
		})
		if r := c.taken; r != nil && (r.Signer == nil || r.IssuerID != "issuing" || !r.Issuer.Equal(issuing)) {
			t.Errorf("nextSigner gave %s without its key or issuer", r.Certificate.Subject)
		}
		return c
	}
	took := func(c signerCheck) string {
		if c.taken == nil {
			return "none"
		}
		return c.taken.Certificate.Subject.CommonName
	}
	stays := func(what string, c signerCheck, problems ...string) {
		t.Helper()
		if c.taken != nil || c.revoked || (c.problems != nil) != (len(problems) > 0) {
			t.Errorf("%s: took %s, revoked %v, problems %v; want the signer in service to stay", what, took(c), c.revoked, c.problems)
		}
		for _, p := range problems {
			if c.problems == nil || !strings.Contains(c.problems.Error(), p) {
				t.Errorf("%s: problems %v; want them to name %s", what, c.problems, p)
			}
		}
	}

	a := signer(10, "ocsp-a", 30, true)
	stays("the only signer in service", next(a))
	b := signer(11, "ocsp-b", 60, true)
	if c := next(a); took(c) != "ocsp-b" || c.revoked || c.problems != nil {
		t.Errorf("a signer lasting longer added: took %s, revoked %v, %v; want ocsp-b", took(c), c.revoked, c.problems)
	}
	stays("the best signer in service", next(b))
	signer(12, "ocsp-c", 90, false)
	stays("a better signer without its key here", next(b), `key "ocsp-c"`)
	signer(13, "ocsp-d", 120, true)
	refuse["ocsp-d"] = true
	stays("a better signer that take refuses", next(b), `key "ocsp-c"`, "ocsp-d: refused by take")
	// Not valid yet, however long it lasts: after every valid one.
	func() {
		saved := now
		defer func() { now = saved }()
		now = now.Add(48 * time.Hour)
		signer(14, "ocsp-later", 365, true)
	}()
	stays("a signer not valid yet", next(b), `key "ocsp-c"`, "ocsp-d")

	revoke(b)
	if c := next(b); took(c) != "ocsp-a" || !c.revoked {
		t.Errorf("ocsp-b revoked: took %s, revoked %v (%v); want ocsp-a, the next one whose key is here and take accepts", took(c), c.revoked, c.problems)
	}
	// A signer record that cannot be read does not keep a revoked one.
	signers = append(signers, store.Issuer{ID: "garbled", Role: "ocsp-signer", CertificateDER: []byte{0x30, 0x03, 0x02, 0x01, 0x01}, KeyLabel: "garbled"})
	revoke(a)
	refuse["ocsp-later"] = true
	if c := next(a); c.taken != nil || !c.revoked || c.problems == nil || !strings.Contains(c.problems.Error(), "issuer garbled") {
		t.Errorf("every signer usable here revoked: took %s, revoked %v, problems %v; want none taken, revoked, naming the garbled record", took(c), c.revoked, c.problems)
	}
}

// TestCheckSignersRecordsTheSwitch: a node that replaces a revoked OCSP
// signer records the time it switched, for every node to sign again what
// the revoked one signed (Publisher.ResignBefore). When the store refuses
// the write, the next check records it, with the switch's time, not its
// own; then nothing more.
func TestCheckSignersRecordsTheSwitch(t *testing.T) {
	ctx := t.Context()
	f := newSignerFixture(t)
	tok, db, raw, now, issuing, issuingKey := f.tok, f.db, f.raw, f.now, f.issuing, f.issuingKey
	signer := func(serial int64, label string, days int) *x509.Certificate {
		t.Helper()
		c, _ := f.certifySigner(t, "issuing", issuing, issuingKey, serial, label, now, days, f.key(label).Public())
		return c
	}
	first, second := signer(2, "ocsp-first", 80), signer(3, "ocsp-second", 60)

	clock := now
	s := &service{db: db, token: tok, now: func() time.Time { return clock }, audit: audit.New(time.Now),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	role, err := openCA(ctx, s, "http://pki.test")
	if err != nil {
		t.Fatal(err)
	}
	inService := func() *x509.Certificate {
		r, _ := role.ca.Responder()
		return r.Certificate
	}
	if !inService().Equal(first) {
		t.Fatalf("in service at start: %s; want the longest-lasting signer", inService().Subject)
	}
	recorded := func() time.Time {
		t.Helper()
		at, err := db.OCSPResignBefore(ctx, "issuing")
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	events := func() int {
		t.Helper()
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE action = 'ocsp.resign'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Revoked through another node; this one's store refuses the write.
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.RevokeCertificate(ctx, "issuing", first.SerialNumber.Bytes(), now, 1, now)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `CREATE TRIGGER refuse_resign BEFORE UPDATE OF ocsp_resign_before ON issuers
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	switched := now.Add(time.Minute)
	clock = switched
	role.checkSigners(ctx)
	if !inService().Equal(second) {
		t.Fatalf("after the revocation: %s in service; want the other signer", inService().Subject)
	}
	if at := recorded(); !at.IsZero() || events() != 0 {
		t.Fatalf("with the write refused: recorded %s, %d events; want nothing", at, events())
	}
	// The store takes it again: the next check records the switch.
	if _, err := raw.ExecContext(ctx, `DROP TRIGGER refuse_resign`); err != nil {
		t.Fatal(err)
	}
	clock = switched.Add(time.Minute)
	role.checkSigners(ctx)
	if at := recorded(); !at.Equal(switched) || events() != 1 {
		t.Errorf("the next check: recorded %s, %d events; want the switch's time %s, one event", at, events(), switched)
	}
	clock = switched.Add(2 * time.Minute)
	role.checkSigners(ctx)
	if at := recorded(); !at.Equal(switched) || events() != 1 {
		t.Errorf("a check after that: recorded %s, %d events; want it unchanged", at, events())
	}
}

// signerFixture is an issuing CA ("issuing") whose key is on a SoftHSM
// token, recorded in a fresh SQLite store, for the OCSP signer checks.
type signerFixture struct {
	tok        *hsm.Token
	db         *store.DB
	raw        *sql.DB
	now        time.Time
	issuing    *x509.Certificate
	issuingKey *hsm.Key
	key        func(label string) *hsm.Key // a new P-256 key on the token
}

func newSignerFixture(t *testing.T) signerFixture {
	t.Helper()
	requireSoftHSM(t)
	ctx := t.Context()
	f := signerFixture{tok: hsmtest.NewToken(t).Token, now: time.Now().UTC().Truncate(time.Second)}
	f.key = func(label string) *hsm.Key {
		t.Helper()
		k, err := f.tok.GenerateKey(ctx, hsm.KeySpec{Label: label, Type: hsm.ECDSAP256})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	f.issuingKey = f.key("issuing")
	f.issuing = catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Issuing"},
		NotBefore: f.now.AddDate(-1, 0, 0), NotAfter: f.now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, f.issuingKey.Public(), f.issuingKey)
	f.db, f.raw = storetest.Open(t, store.DriverSQLite)
	if err := f.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Issuing", Role: "issuing", CertificateDER: f.issuing.Raw, KeyLabel: "issuing", CreatedAt: f.now})
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCheckSignersForbidsAcrossIssuers: an OCSP signer one issuing CA
// takes while the node runs is a key every other issuing CA of the node
// refuses to certify from then on, as it refuses the signers it knew at
// start.
func TestCheckSignersForbidsAcrossIssuers(t *testing.T) {
	ctx := t.Context()
	f := newSignerFixture(t)
	now := f.now
	// The active issuing CA, lasting longer than the fixture's.
	activeKey := f.key("issuing-2")
	active := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Issuing 2"},
		NotBefore: now.AddDate(0, 0, -1), NotAfter: now.AddDate(6, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, activeKey.Public(), activeKey)
	if err := f.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutIssuer(ctx, store.Issuer{ID: "issuing-2", Name: "Issuing 2", Role: "issuing", CertificateDER: active.Raw, KeyLabel: "issuing-2", CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	signer := func(parentID string, parent *x509.Certificate, parentKey *hsm.Key, serial int64, label string, days int) *x509.Certificate {
		t.Helper()
		c, _ := f.certifySigner(t, parentID, parent, parentKey, serial, label, now, days, f.key(label).Public())
		return c
	}
	signer("issuing", f.issuing, f.issuingKey, 10, "ocsp-older", 60)
	signer("issuing-2", active, activeKey, 20, "ocsp-active", 60)
	s := &service{db: f.db, token: f.tok, now: time.Now, audit: audit.New(time.Now), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	role, err := openCA(ctx, s, "http://pki.test")
	if err != nil {
		t.Fatal(err)
	}
	if role.crlFrom.ID != "issuing-2" || len(role.older) != 1 {
		t.Fatalf("active %s with %d older; want issuing-2 active, issuing older", role.crlFrom.ID, len(role.older))
	}
	forbidden := func(c *x509.Certificate) bool {
		return slices.ContainsFunc(role.ca.ForbiddenKeys(), func(k crypto.PublicKey) bool {
			return k.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey)
		})
	}
	// A signer added for the older issuing CA, lasting longer: taken at
	// the next check, and refused by the active one from then on.
	added := signer("issuing", f.issuing, f.issuingKey, 11, "ocsp-older-next", 80)
	if forbidden(added) {
		t.Fatal("the new signer's key is forbidden before any check")
	}
	role.checkSigners(ctx)
	if r, _ := role.older[0].ca.Responder(); !r.Certificate.Equal(added) {
		t.Fatalf("the older issuing CA's signer after the check: %s; want the new one", r.Certificate.Subject)
	}
	if !forbidden(added) {
		t.Error("the active issuing CA would certify the key another issuing CA's new OCSP signer signs with")
	}
}

// certifySigner has the issuing CA parentID (its certificate parent, its
// key parentKey) certify pub as an OCSP signer, valid from an hour before
// at for days, and records it at at as sanad issuer add does: issuer
// label, whose key is labelled label, among parentID's certificates.
func (f signerFixture) certifySigner(t *testing.T, parentID string, parent *x509.Certificate, parentKey crypto.Signer,
	serial int64, label string, at time.Time, days int, pub crypto.PublicKey) (*x509.Certificate, store.Issuer) {
	t.Helper()
	ctx := t.Context()
	c := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: label},
		NotBefore: at.Add(-time.Hour), NotAfter: at.AddDate(0, 0, days), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, parent, pub, parentKey)
	is := store.Issuer{ID: label, Name: label, Role: "ocsp-signer", CertificateDER: c.Raw, KeyLabel: label, CreatedAt: at}
	if err := f.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutIssuer(ctx, is); err != nil {
			return err
		}
		return ca.RecordCertified(ctx, tx, parentID, "ocsp-signer", c, at)
	}); err != nil {
		t.Fatal(err)
	}
	return c, is
}
