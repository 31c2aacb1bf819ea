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

	xocsp "golang.org/x/crypto/ocsp"

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

// TestSignAfterExpiry: a certificate's status stays answerable after it
// expires. A response signed after the expiry carries archiveCutoff (RFC
// 6960 §4.4.4) set to the issuing CA certificate's notBefore, which
// OpenSSL prints and verifies, and a nonce response made from it keeps it;
// one signed while the certificate is valid (up to its notAfter, inclusive)
// has none. GnuTLS ocsptool verifies each too.
func TestSignAfterExpiry(t *testing.T) {
	openssl, ocsptool := testenv.Tool(t, "openssl"), testenv.Tool(t, "ocsptool")
	now := time.Now().UTC().Truncate(time.Second)
	f := catest.New(t, now)
	r := f.Responder
	s, err := ocspsign.New(0, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	cutoff := r.Issuer.NotBefore.UTC()
	for _, tc := range []struct {
		name     string
		notAfter time.Time
		revoked  bool
		want     time.Time // archiveCutoff; zero: none
	}{
		{"valid", now.AddDate(1, 0, 0), false, time.Time{}},
		{"expires at thisUpdate", now, false, time.Time{}},
		{"expired a second ago", now.Add(-time.Second), false, cutoff},
		{"expired years ago", now.AddDate(-5, 0, 0), false, cutoff},
		{"revoked, expired", now.AddDate(0, -1, 0), true, cutoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := store.Certificate{IssuerID: "issuing", Serial: []byte{0x0a, 0xbc, 0xde}, Profile: "citizen-sign",
				NotBefore: tc.notAfter.AddDate(-2, 0, 0), NotAfter: tc.notAfter, Status: store.StatusGood}
			wantStatus := "0x0abcde: good"
			if tc.revoked {
				c.Status, c.RevokedAt, c.Reason = store.StatusRevoked, tc.notAfter.AddDate(0, 0, -3), 1
				wantStatus = "0x0abcde: revoked"
			}
			resp, err := s.Sign(r, c)
			if err != nil {
				t.Fatal(err)
			}
			nonced, err := s.WithNonce(r, resp.DER, []byte("0123456789abcdef"))
			if err != nil {
				t.Fatal(err)
			}
			for name, der := range map[string][]byte{"pre-signed": resp.DER, "nonce": nonced} {
				parsed, err := xocsp.ParseResponseForCert(der, nil, r.Issuer)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, err := ocspsign.ArchiveCutoffForTest(parsed)
				if err != nil || !got.Equal(tc.want) {
					t.Errorf("%s: archiveCutoff %s, %v; want %s", name, got, err, tc.want)
				}
				path := filepath.Join(t.TempDir(), "resp.der")
				if err := os.WriteFile(path, der, 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(openssl, "ocsp", "-respin", path, "-issuer", f.CAPEM, "-CAfile", f.RootPEM,
					"-verify_other", f.CAPEM, "-serial", "0x0abcde", "-no_nonce", "-resp_text").CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), wantStatus) {
					t.Fatalf("%s: openssl ocsp: %v\n%s", name, err, out)
				}
				// GnuTLS parses the extension and verifies the response too.
				if out, err := exec.Command(ocsptool, "--verify-response", "--load-trust", f.CAPEM, "--infile", path).CombinedOutput(); err != nil ||
					!strings.Contains(string(out), "Verifying OCSP Response: Success") || !strings.Contains(string(out), "Certificate Status: "+strings.Fields(wantStatus)[1]) {
					t.Errorf("%s: ocsptool --verify-response: %v\n%s", name, err, out)
				}
				printed := cutoff.Format("Jan _2 15:04:05 2006 GMT")
				if has := strings.Contains(string(out), "OCSP Archive Cutoff") && strings.Contains(string(out), printed); has != !tc.want.IsZero() {
					t.Errorf("%s: openssl shows archiveCutoff %s: %v\n%s", name, printed, has, out)
				}
			}
		})
	}
}
