package lint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// TestEmptySequencesAgree: emptySequences finds exactly what zlint's
// e_crl_empty_revoked_certificates and e_crl_empty_extn_sequence find, on
// CRLs Go writes (no entries, entries with and without a reason) and on
// hand-made ones with an empty revokedCertificates or an entry with an
// empty crlEntryExtensions; and RevocationList reports them by name.
func TestEmptySequencesAgree(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	issuerTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CRL issuer", Country: []string{"KZ"}},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	issuerDER, err := x509.CreateCertificate(rand.Reader, issuerTmpl, issuerTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(issuerDER)
	if err != nil {
		t.Fatal(err)
	}
	goCRL := func(entries []x509.RevocationListEntry) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: now,
			NextUpdate: now.AddDate(0, 0, 7), RevokedCertificateEntries: entries}, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// handMade is a CertificateList whose revokedCertificates holds the
	// given entry bodies (nil: absent), with a dummy signature: the lints
	// parse, they do not verify.
	ecdsaSHA256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	// The same OID with a padding octet that encoding/asn1 refuses and
	// zcrypto reads.
	paddedOID := []byte{0x06, 0x09, 0x2a, 0x80, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	handMadeWith := func(alg []byte, entries [][]byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(alg) })
				b.AddBytes(issuer.RawSubject)
				b.AddASN1UTCTime(now)
				b.AddASN1UTCTime(now.AddDate(0, 0, 7))
				if entries != nil {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, e := range entries {
							b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(e) })
						}
					})
				}
			})
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(alg) })
			b.AddASN1BitString([]byte{0x30, 0x00})
		})
		return b.BytesOrPanic()
	}
	handMade := func(entries [][]byte) []byte { return handMadeWith(ecdsaSHA256, entries) }
	entry := func(serial int64, ext []byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1Int64(serial)
		b.AddASN1UTCTime(now.Add(-time.Hour))
		b.AddBytes(ext)
		return b.BytesOrPanic()
	}
	reason := []byte{0x30, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x04, 0x0a, 0x02, 0x01, 0x01}
	crls := map[string][]byte{
		"Go, no entries": goCRL(nil),
		"Go, entries with and without a reason": goCRL([]x509.RevocationListEntry{
			{SerialNumber: big.NewInt(10), RevocationTime: now, ReasonCode: 1},
			{SerialNumber: big.NewInt(11), RevocationTime: now},
		}),
		"no revokedCertificates":          handMade(nil),
		"empty revokedCertificates":       handMade([][]byte{}),
		"an entry with a reason":          handMade([][]byte{entry(12, reason)}),
		"an entry with empty extensions":  handMade([][]byte{entry(12, reason), entry(0x81234, []byte{0x30, 0x00})}),
		"entries without extensions only": handMade([][]byte{entry(12, nil), entry(13, nil)}),
		"a padded signature algorithm":    handMadeWith(paddedOID, [][]byte{entry(12, reason)}),
		"an entry field of a high tag":    handMade([][]byte{entry(12, []byte{0x1f, 0x20, 0x00})}),
	}
	l, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	run := map[string]bool{lintEmptyRevoked: true, lintEmptyEntryExt: true}
	var fired []string
	for name, der := range crls {
		t.Run(name, func(t *testing.T) {
			crl, err := zx509.ParseRevocationList(der)
			if err != nil {
				t.Fatalf("zcrypto: %v", err)
			}
			var want []string
			for lintName := range run {
				if r := l.registry.RevocationListLints().ByName(lintName).Execute(crl, l.config); r.Status >= lint.Warn {
					want = append(want, finding(lintName, r))
				}
			}
			got := emptySequences(der, crl.ThisUpdate, run)
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("emptySequences: %v\nzlint:          %v", got, want)
			}
			fired = append(fired, want...)
			for _, w := range want {
				if err := l.RevocationList(der); err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("RevocationList does not report %s: %v", w, err)
				}
			}
		})
	}
	for _, lintName := range []string{lintEmptyRevoked, lintEmptyEntryExt} {
		if !slices.ContainsFunc(fired, func(f string) bool { return strings.HasPrefix(f, lintName+" ") }) {
			t.Errorf("no case makes %s fire: the test tests nothing of it", lintName)
		}
	}
}
