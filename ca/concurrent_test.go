package ca_test

import (
	"bytes"
	"crypto/x509"
	"database/sql"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestConcurrentIssuance issues 100 certificates from 100 goroutines, so
// that their writes commit in groups: every one is stored signed with its
// own good OCSP response, no intent is left, and the audit log holds an
// intent and an issue event for each, in one unbroken chain.
func TestConcurrentIssuance(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	csr := newCSR(t)
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		authority := f.CA(t, db, audit.New(time.Now))
		const n = 100
		certs := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c, err := authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csr, Verified: person, Actor: "test"})
				if err != nil {
					t.Error(err)
					return
				}
				certs[i] = c.Raw
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, der := range certs {
			row, err := db.Certificate(ctx, f.Issuer.ID, mustParse(t, der).SerialNumber.Bytes())
			if err != nil || !bytes.Equal(row.DER, der) || row.Status != store.StatusGood {
				t.Fatalf("certificate %d: stored %+v, %v", i, row, err)
			}
			stored, err := db.OCSPResponse(ctx, f.Issuer.ID, row.Serial)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ocsp.ParseResponseForCert(stored.DER, mustParse(t, der), f.Issuer.Certificate)
			if err != nil || resp.Status != ocsp.Good {
				t.Fatalf("certificate %d: OCSP %+v, %v", i, resp, err)
			}
		}
		if unsigned, err := db.UnsignedCertificates(ctx); err != nil || len(unsigned) != 0 {
			t.Errorf("intents left: %d, %v", len(unsigned), err)
		}
		rep, err := audit.Verify(ctx, db, "test", nil)
		if err != nil || rep.Events != 2*n || rep.FirstBad != 0 {
			t.Errorf("audit log: %+v, %v", rep, err)
		}
	})
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
