package ocspsign_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

func TestSignGoodThenRevoked(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	now := time.Now().UTC().Truncate(time.Second)
	f := catest.New(t, now)
	r := f.Responder
	s, err := ocspsign.New(0, 5*time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		serial := []byte{0x0a, 0xbc, 0xde}
		var resp store.OCSPResponse
		// judge asks OpenSSL for the status in the stored response.
		judge := func() string {
			t.Helper()
			stored, err := db.OCSPResponse(ctx, "issuing", serial)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "resp.der")
			if err := os.WriteFile(path, stored.DER, 0o600); err != nil {
				t.Fatal(err)
			}
			// The root is the only anchor; the responder's certificate
			// (in the response) chains to it through the issuing CA.
			out, err := exec.Command(openssl, "ocsp", "-respin", path, "-issuer", f.CAPEM, "-CAfile", f.RootPEM,
				"-verify_other", f.CAPEM, "-serial", "0x0abcde").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Response verify OK") {
				t.Fatalf("openssl ocsp: %v\n%s", err, out)
			}
			return string(out)
		}
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Test Issuing CA", Role: "issuing", CertificateDER: r.Issuer.Raw, KeyLabel: "issuing", CreatedAt: now}); err != nil {
				return err
			}
			c := store.Certificate{IssuerID: "issuing", Serial: serial, Profile: "citizen-auth", NotBefore: now, NotAfter: now.AddDate(1, 0, 0), TBS: []byte{0x30}, Status: store.StatusGood, CreatedAt: now}
			if err := tx.InsertCertificateIntent(ctx, c); err != nil {
				return err
			}
			resp, err = s.SignAndStore(ctx, tx, r, c)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if out := judge(); !strings.Contains(out, "0x0abcde: good") {
			t.Errorf("want good:\n%s", out)
		}
		if got := resp.NextUpdate.Sub(resp.ThisUpdate); got != ocspsign.DefaultValidity || resp.ThisUpdate.After(now) {
			t.Errorf("validity %s, thisUpdate %s (now %s)", got, resp.ThisUpdate, now)
		}

		revokedAt := now.Add(-time.Minute)
		err = db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.RevokeCertificate(ctx, "issuing", serial, revokedAt, 1, now); err != nil {
				return err
			}
			c, err := db.Certificate(ctx, "issuing", serial)
			if err != nil {
				return err
			}
			c.Status, c.RevokedAt, c.Reason = store.StatusRevoked, revokedAt, 1
			_, err = s.SignAndStore(ctx, tx, r, c)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out := judge()
		for _, want := range []string{"0x0abcde: revoked", "Reason: keyCompromise", "Revocation Time"} {
			if !strings.Contains(out, want) {
				t.Errorf("revoked response lacks %q:\n%s", want, out)
			}
		}
	})
}

func TestNewRefusesValidity(t *testing.T) {
	for _, v := range []time.Duration{time.Hour, 11 * 24 * time.Hour} {
		if _, err := ocspsign.New(v, 0, time.Now); err == nil {
			t.Errorf("validity %s accepted", v)
		}
	}
}
