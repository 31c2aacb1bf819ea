package crl_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// issuingCA is a CA certificate for a P-256 key in SoftHSM.
func issuingCA(t testing.TB, now time.Time) crl.Issuer {
	t.Helper()
	key, err := hsmtest.NewToken(t).Token.GenerateKey(context.Background(), hsm.KeySpec{Label: "issuing", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ski := sha256.Sum256(spki)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x5a4e4144), Subject: pkix.Name{CommonName: "Test Issuing CA", Organization: []string{"Sanad"}, Country: []string{"KZ"}},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski[:20], AuthorityKeyId: ski[:20],
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl.Issuer{ID: "issuing", Certificate: cert, Signer: key}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBuild(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	is := issuingCA(t, start)
	caPEM := filepath.Join(t.TempDir(), "issuing.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	linter, err := lint.New("")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := context.Background()
		clk := &clock{t: start}
		log := audit.New(clk.now)
		b, err := crl.New(db, log, linter, crl.Config{}, clk.now)
		if err != nil {
			t.Fatal(err)
		}
		inTx := func(fn func(*store.Tx) error) {
			t.Helper()
			if err := db.InTx(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		inTx(func(tx *store.Tx) error {
			return tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Test Issuing CA", Role: "issuing", CertificateDER: is.Certificate.Raw, KeyLabel: "issuing", CreatedAt: start})
		})
		// judge checks a CRL with OpenSSL and returns its text.
		judge := func(c store.CRL) string {
			t.Helper()
			path := filepath.Join(t.TempDir(), "issuing.crl")
			if err := os.WriteFile(path, c.DER, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(openssl, "crl", "-in", path, "-inform", "DER", "-CAfile", caPEM, "-noout", "-verify", "-text").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "verify OK") {
				t.Fatalf("openssl crl -verify: %v\n%s", err, out)
			}
			return string(out)
		}

		first, err := b.Build(ctx, is)
		if err != nil {
			t.Fatal(err)
		}
		if first.Number != start.UnixNano() || !strings.Contains(judge(first), "No Revoked Certificates") {
			t.Fatalf("first CRL #%d", first.Number)
		}

		// Two certificates revoked: one long-lived, one that expires in a day.
		for _, c := range []struct {
			serial   []byte
			notAfter time.Time
			reason   int
		}{{[]byte{0x11, 0x22}, start.AddDate(3, 0, 0), 1}, {[]byte{0x33, 0x44}, start.Add(24 * time.Hour), 4}} {
			inTx(func(tx *store.Tx) error {
				if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: c.serial, Profile: "citizen-auth",
					NotBefore: start.AddDate(0, -1, 0), NotAfter: c.notAfter, TBS: []byte{0x30}, CreatedAt: start}); err != nil {
					return err
				}
				return tx.RevokeCertificate(ctx, "issuing", c.serial, start.Add(time.Minute), c.reason, start)
			})
		}
		clk.t = start.Add(time.Hour)
		second, err := b.Build(ctx, is)
		if err != nil {
			t.Fatal(err)
		}
		text := judge(second)
		for _, want := range []string{"Serial Number: 1122", "Key Compromise", "Serial Number: 3344", "Superseded", fmt.Sprintf("X509v3 CRL Number: \n                %d", start.Add(time.Hour).UnixNano()), "X509v3 Authority Key Identifier"} {
			if !strings.Contains(text, want) {
				t.Errorf("CRL #2 lacks %q:\n%s", want, text)
			}
		}

		// 3344 expires; it stays on the first CRL published after its
		// expiry, then leaves. 1122 stays.
		clk.t = start.Add(25 * time.Hour)
		third, err := b.Build(ctx, is)
		if err != nil {
			t.Fatal(err)
		}
		if text := judge(third); !strings.Contains(text, "Serial Number: 3344") {
			t.Errorf("CRL #3 dropped 3344 before a CRL was published after its expiry")
		}
		// A CRL built seconds later (after another revocation) still lists
		// it: #3 may have been replaced before anyone fetched it.
		clk.t = start.Add(25*time.Hour + 5*time.Second)
		if c, err := b.Build(ctx, is); err != nil || !strings.Contains(judge(c), "Serial Number: 3344") {
			t.Errorf("a CRL seconds after #3 dropped 3344 (%v)", err)
		}
		clk.t = start.Add(72 * time.Hour)
		fourth, err := b.Build(ctx, is)
		if err != nil {
			t.Fatal(err)
		}
		text = judge(fourth)
		if strings.Contains(text, "Serial Number: 3344") || !strings.Contains(text, "Serial Number: 1122") {
			t.Errorf("CRL #4 entries wrong:\n%s", text)
		}
		if third.Number != start.Add(25*time.Hour).UnixNano() || fourth.Number != start.Add(72*time.Hour).UnixNano() || fourth.NextUpdate.Sub(fourth.ThisUpdate) > crl.MaxValidity {
			t.Errorf("numbers %d, %d; validity %s", third.Number, fourth.Number, fourth.NextUpdate.Sub(fourth.ThisUpdate))
		}

		// Every CRL left its audit event, and the log verifies.
		r, err := audit.Verify(ctx, db, "test", nil)
		if err != nil || !r.OK() || r.Events != 5 {
			t.Errorf("audit: %+v, %v", r, err)
		}

		// The database loses the latest CRL (a restore, a failover to a
		// lagging replica): the next CRL still outnumbers the lost one,
		// which relying parties may hold. A clock set back still counts up.
		if _, err := raw.ExecContext(ctx, fmt.Sprintf(`DELETE FROM crls WHERE issuer_id = 'issuing' AND crl_number = %d`, fourth.Number)); err != nil {
			t.Fatal(err)
		}
		clk.t = start.Add(73 * time.Hour)
		fifth, err := b.Build(ctx, is)
		if err != nil || fifth.Number <= fourth.Number {
			t.Fatalf("CRL after the loss: #%d (%v), the lost one was #%d", fifth.Number, err, fourth.Number)
		}
		clk.t = start.Add(72 * time.Hour)
		sixth, err := b.Build(ctx, is)
		if err != nil || sixth.Number != fifth.Number+1 {
			t.Errorf("CRL with the clock set back: #%d (%v), after #%d", sixth.Number, err, fifth.Number)
		}
	})
}

func TestNewRefusesLongValidity(t *testing.T) {
	if _, err := crl.New(nil, nil, nil, crl.Config{Validity: 11 * 24 * time.Hour}, time.Now); err == nil {
		t.Error("11-day CRL validity accepted")
	}
}

// TestBuildDatesAfterItsEntries: a CRL's thisUpdate and number are taken
// after its entries are read, and thisUpdate is never before an entry's
// revocation date: a revocation committed while a build read (dated after
// a clock read before), or a Backdate, gave a CRL with an entry after its
// thisUpdate, which the lint refused, so no CRL was published. Nor is it
// before the previous CRL's thisUpdate (a node whose clock is behind).
func TestBuildDatesAfterItsEntries(t *testing.T) {
	start := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	is := issuingCA(t, start)
	linter, err := lint.New("")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Test Issuing CA", Role: "issuing", CertificateDER: is.Certificate.Raw, KeyLabel: "issuing", CreatedAt: start}); err != nil {
				return err
			}
			if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: []byte{0x55, 0x66}, Profile: "citizen-auth",
				NotBefore: start.AddDate(0, -1, 0), NotAfter: start.AddDate(1, 0, 0), TBS: []byte{0x30}, CreatedAt: start}); err != nil {
				return err
			}
			// Revoked a second after the build's first look at the clock.
			return tx.RevokeCertificate(ctx, "issuing", []byte{0x55, 0x66}, start.Add(time.Second), 1, start.Add(time.Second))
		}); err != nil {
			t.Fatal(err)
		}
		// The clock moves while the build reads: each reading two seconds on.
		at := start
		moving := func() time.Time { now := at; at = at.Add(2 * time.Second); return now }
		b, err := crl.New(db, audit.New(time.Now), linter, crl.Config{}, moving)
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.Build(ctx, is)
		if err != nil {
			t.Fatalf("a CRL built while the clock moved past its entry: %v", err)
		}
		if c.ThisUpdate.Before(start.Add(time.Second)) || c.Number < start.Add(2*time.Second).UnixNano() {
			t.Errorf("thisUpdate %s, number %d: want both from after the entries were read", c.ThisUpdate, c.Number)
		}
		// Backdated an hour, thisUpdate stays at the newest entry.
		at = start.Add(time.Hour)
		back, err := crl.New(db, audit.New(time.Now), linter, crl.Config{Backdate: time.Hour}, moving)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := back.Build(ctx, is); err != nil || !c.ThisUpdate.Equal(start.Add(2*time.Second)) {
			t.Errorf("a backdated CRL: thisUpdate %s, %v; want an hour before the clock's second reading", c.ThisUpdate, err)
		}
		// A node whose clock is behind (here 50 minutes, backdated an
		// hour: before the entry): thisUpdate is not before the previous
		// CRL's, which a relying party would otherwise keep as the newer.
		at = start.Add(10 * time.Minute)
		if c, err := back.Build(ctx, is); err != nil || !c.ThisUpdate.Equal(start.Add(2*time.Second)) {
			t.Errorf("a CRL built on a clock behind the previous CRL's: thisUpdate %s, %v; want the previous CRL's", c.ThisUpdate, err)
		}
		// A clock further behind, past the entry's date too.
		at = start.Add(-time.Hour)
		if c, err := b.Build(ctx, is); err != nil || !c.ThisUpdate.Equal(start.Add(2*time.Second)) {
			t.Errorf("a CRL built on a clock an hour behind: thisUpdate %s, %v; want the previous CRL's", c.ThisUpdate, err)
		}
	})
}
