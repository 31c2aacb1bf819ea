package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"
)

// BenchmarkVerify measures verifications per second of a detached CMS and
// a JWS signed by a citizen-sign certificate under a two-level PKI whose
// OCSP responder and CRLs are served on loopback:
//
//   - baseline: what any verifier must do, bare: one crypto/ecdsa verify of
//     the signature and x509.Certificate.Verify of the chain;
//   - cms, jws: the package's own work, with the revocation answers
//     cached (RevocationCacheTTL), so no network, each iteration followed
//     by one of the baseline: ns/op is their sum; ns/verify, ns/baseline
//     and their ratio x-baseline are reported apart;
//   - cms-ocsp, jws-ocsp: no cache, an OCSP request over loopback and the
//     issuing CA's CRL fetched every time.
func BenchmarkVerify(b *testing.B) {
	p := newTestPKI(b)
	key := newKey(b)
	leaf := p.leaf(b, key, citizenSign())
	s := cmsSigner{cert: leaf, key: key, signingTime: time.Now(), ess: leaf}
	cms := buildCMS(b, document, true, []*x509.Certificate{leaf, p.ca}, s)
	jws := []byte(signJWS(b, &s, []*x509.Certificate{leaf, p.ca}, document, true, nil))

	digest := sha256.Sum256(document)
	rawSig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(p.root)
	inter.AddCert(p.ca)
	baseline := func() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], rawSig) {
			b.Fatal("baseline signature")
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			baseline()
		}
	})

	for _, tc := range []struct {
		name   string
		sig    []byte
		cached bool
	}{
		{"cms", cms, true}, {"jws", jws, true}, {"cms-ocsp", cms, false}, {"jws-ocsp", jws, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := p.config()
			if tc.cached {
				cfg.RevocationCacheTTL = time.Hour
			}
			v, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			check := func() {
				res, err := v.Verify(ctx, tc.sig, document)
				if err != nil || res.Indication != TotalPassed {
					b.Fatalf("%+v %v", res, err)
				}
			}
			check() // fills the cache
			if !tc.cached {
				for b.Loop() {
					check()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/verify")
				return
			}
			// The baseline interleaved with the verifications, one each per
			// iteration, so that both see the same machine: on a shared
			// 2-core VM the speed drifts between runs more than the ratio.
			var own, base time.Duration
			for b.Loop() {
				t0 := time.Now()
				check()
				t1 := time.Now()
				baseline()
				own, base = own+t1.Sub(t0), base+time.Since(t1)
			}
			b.ReportMetric(float64(own.Nanoseconds())/float64(b.N), "ns/verify")
			b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "ns/baseline")
			b.ReportMetric(float64(own)/float64(base), "x-baseline")
		})
	}
}
