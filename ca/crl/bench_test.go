package crl_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// BenchmarkBuild100k builds, signs in SoftHSM2, lints and stores the CRL of
// an issuer with 100 000 revoked certificates (issue 5: under a second).
func BenchmarkBuild100k(b *testing.B) {
	const entries = 100_000
	start := time.Now().UTC().Truncate(time.Second)
	is := issuingCA(b, start)
	linter, err := lint.New("")
	if err != nil {
		b.Fatal(err)
	}
	for _, driver := range storetest.Drivers() {
		b.Run(driver, func(b *testing.B) {
			db, _ := storetest.Open(b, driver)
			ctx := context.Background()
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Test Issuing CA", Role: "issuing",
					CertificateDER: is.Certificate.Raw, KeyLabel: "issuing", CreatedAt: start}); err != nil {
					return err
				}
				rows := make([]store.Certificate, entries)
				for i := range rows {
					serial := binary.BigEndian.AppendUint64([]byte{0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}, uint64(i))
					rows[i] = store.Certificate{IssuerID: "issuing", Serial: serial, Profile: "citizen-auth",
						NotBefore: start, NotAfter: start.AddDate(2, 0, 0), TBS: []byte{0x30}, CreatedAt: start}
				}
				if err := tx.InsertCertificateIntents(ctx, rows); err != nil {
					return err
				}
				for _, r := range rows {
					if err := tx.RevokeCertificate(ctx, "issuing", r.Serial, start, 1, start); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			builder, err := crl.New(db, audit.New(time.Now), linter, crl.Config{}, time.Now)
			if err != nil {
				b.Fatal(err)
			}
			var size int
			for b.Loop() {
				c, err := builder.Build(ctx, is)
				if err != nil {
					b.Fatal(err)
				}
				size = len(c.DER)
			}
			b.ReportMetric(float64(size), "crl-bytes")
		})
	}
}
