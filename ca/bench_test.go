package ca_test

import (
	"context"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// BenchmarkIssue measures ca.Issue end to end (CSR checks, zlint, intent,
// HSM certificate signature, OCSP signature, two commits) on SoftHSM2, per
// database, one goroutine and GOMAXPROCS*4 goroutines.
func BenchmarkIssue(b *testing.B) {
	f := catest.New(b, time.Now().UTC().Truncate(time.Second))
	csr := newCSR(b)
	for _, driver := range storetest.Drivers() {
		for _, parallel := range []bool{false, true} {
			name := driver + "/serial"
			if parallel {
				name = driver + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				db, _ := storetest.Open(b, driver)
				authority := f.CA(b, db, audit.New(time.Now))
				ctx := context.Background()
				issue := func() {
					if _, err := authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csr, Verified: person, Actor: "bench"}); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				if parallel {
					b.SetParallelism(32)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							issue()
						}
					})
				} else {
					for b.Loop() {
						issue()
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
			})
		}
	}
}

// BenchmarkCheck measures ca.Check, what Issue does before the HSM (CSR
// checks and proof of possession, template, zlint),
// on one goroutine: with the HSM's two signatures, the least a certificate
// costs (`sanad bench issue` reports the same as its floor).
func BenchmarkCheck(b *testing.B) {
	f := catest.New(b, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(b, storetest.Drivers()[0])
	authority := f.CA(b, db, audit.New(time.Now))
	req := ca.Request{Profile: "citizen-auth", CSR: newCSR(b), Verified: person}
	for b.Loop() {
		if err := authority.Check(req); err != nil {
			b.Fatal(err)
		}
	}
}
