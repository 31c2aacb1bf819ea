package lint

import (
	encasn1 "encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/zmap/zlint/v3/lint"
	"github.com/zmap/zlint/v3/util"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// The two zlint CRL lints that look for empty SEQUENCEs each decode the
// whole CRL again with encoding/asn1: for a CRL of 100 000 entries that was
// a quarter of a second per lint, most of the time a CRL build took.
// RevocationList runs them as emptySequences instead, one pass over the DER
// with the same conditions and the same names in its findings;
// TestEmptySequencesAgree holds it to the lints.
const (
	lintEmptyRevoked  = "e_crl_empty_revoked_certificates" // RFC 5280 §5.1.2.6
	lintEmptyEntryExt = "e_crl_empty_extn_sequence"        // RFC 5280 Appendix A.1
)

// emptySequences checks a DER CertificateList (RFC 5280 §5.1) that zcrypto
// parsed, with thisUpdate, as the two lints do, and returns the findings of
// those in run: revokedCertificates, when present, is not an empty
// SEQUENCE; no entry's crlEntryExtensions is an empty SEQUENCE. Like the
// lints, it finds nothing in a CRL from before RFC 5280, and reports a CRL
// or an entry that encoding/asn1 could not decode as fatal.
func emptySequences(der []byte, thisUpdate time.Time, run map[string]bool) []string {
	if len(run) == 0 || thisUpdate.Before(util.RFC5280Date) {
		return nil
	}
	var out []string
	found := func(name string, status lint.LintStatus, format string, args ...any) {
		if run[name] {
			out = append(out, finding(name, &lint.LintResult{Status: status, Details: fmt.Sprintf(format, args...)}))
		}
	}
	fatal := func() []string {
		out = nil
		found(lintEmptyRevoked, lint.Fatal, "Failed to decode CRL")
		found(lintEmptyEntryExt, lint.Fatal, "Failed to decode CRL")
		return out
	}
	input := cryptobyte.String(der)
	var list, tbs, alg cryptobyte.String
	var oid encasn1.ObjectIdentifier
	if !input.ReadASN1(&list, asn1.SEQUENCE) || !list.ReadASN1(&tbs, asn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(asn1.INTEGER) || !tbs.ReadASN1(&alg, asn1.SEQUENCE) {
		return fatal()
	}
	// zcrypto reads the signature algorithm more leniently than
	// encoding/asn1, which the revokedCertificates lint decodes it with.
	if !alg.ReadASN1ObjectIdentifier(&oid) {
		found(lintEmptyRevoked, lint.Fatal, "Failed to decode CRL")
	}
	// issuer, thisUpdate, nextUpdate (optional)
	if !tbs.SkipASN1(asn1.SEQUENCE) || !skipTime(&tbs) {
		return fatal()
	}
	if tbs.PeekASN1Tag(asn1.UTCTime) || tbs.PeekASN1Tag(asn1.GeneralizedTime) {
		skipTime(&tbs)
	}
	if !tbs.PeekASN1Tag(asn1.SEQUENCE) {
		return out // no revokedCertificates
	}
	var revoked cryptobyte.String
	if !tbs.ReadASN1(&revoked, asn1.SEQUENCE) {
		return fatal()
	}
	if revoked.Empty() {
		found(lintEmptyRevoked, lint.Error, "CRL contains an empty revokedCertificates element")
		return out
	}
	for !revoked.Empty() {
		var entry cryptobyte.String
		serial := new(big.Int)
		if !revoked.ReadASN1(&entry, asn1.SEQUENCE) {
			return fatal()
		}
		if !entry.ReadASN1Integer(serial) || !skipTime(&entry) {
			found(lintEmptyEntryExt, lint.Fatal, "Cannot decode the CRL entry %x", serial)
			return out
		}
		if entry.Empty() {
			continue
		}
		var ext cryptobyte.String
		var tag asn1.Tag
		if !entry.ReadAnyASN1(&ext, &tag) {
			// A tag cryptobyte does not read (a high tag number) that
			// encoding/asn1 does is not a SEQUENCE: the lint passes it.
			if _, err := encasn1.Unmarshal(entry, &encasn1.RawValue{}); err != nil {
				found(lintEmptyEntryExt, lint.Fatal, "Cannot decode the CRL entry %x", serial)
				return out
			}
			continue
		}
		if tag == asn1.SEQUENCE && ext.Empty() {
			found(lintEmptyEntryExt, lint.Error, "The crlEntryExtensions field for CRL entry %x is an empty SEQUENCE (forbidden)", serial)
			return out
		}
	}
	return out
}

// skipTime skips a UTCTime or GeneralizedTime.
func skipTime(s *cryptobyte.String) bool {
	if s.PeekASN1Tag(asn1.GeneralizedTime) {
		return s.SkipASN1(asn1.GeneralizedTime)
	}
	return s.SkipASN1(asn1.UTCTime)
}
