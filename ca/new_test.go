package ca_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestNewRefusesPartsThatDoNotFit: keys that are not their certificates',
// a responder the issuer did not certify or not for OCSP — each named.
func TestNewRefusesPartsThatDoNotFit(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	other := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	base := f.Deps(db, audit.New(time.Now))
	cases := []struct {
		name string
		edit func(*ca.Deps)
		want string
	}{
		{"issuer key", func(d *ca.Deps) { d.Issuer.Signer = other.Issuer.Signer }, "the key does not match the certificate"},
		{"responder of another issuer", func(d *ca.Deps) { d.Responder.Certificate = other.Responder.Certificate }, "not the issuer's"},
		{"responder key", func(d *ca.Deps) { d.Responder.Signer = other.Responder.Signer }, "responder key does not match"},
		{"responder without OCSPSigning", func(d *ca.Deps) {
			d.Responder.Certificate, d.Responder.Signer = f.Issuer.Certificate, f.Issuer.Signer
		}, "lacks the OCSPSigning EKU"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			tc.edit(&d)
			if _, err := ca.New(d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ca.New: %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ca.New(base); err != nil {
		t.Fatalf("the fixture's own parts: %v", err)
	}
}
