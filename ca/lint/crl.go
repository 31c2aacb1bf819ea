package lint

import (
	"fmt"
	"math/big"

	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// The two zlint CRL lints that look for empty SEQUENCEs each decode the
// whole CRL again with encoding/asn1: for a CRL of 100 000 entries that was
// half a second per lint, most of the time a CRL build took. RevocationList
// runs them as emptySequences instead, one pass over the DER with the same
// conditions and the same names in its findings; TestEmptySequencesAgree
// holds it to the lints.
const (
	lintEmptyRevoked  = "e_crl_empty_revoked_certificates" // RFC 5280 §5.1.2.6
	lintEmptyEntryExt = "e_crl_empty_extn_sequence"        // RFC 5280 Appendix A.1
)

// emptySequences checks a DER CertificateList (RFC 5280 §5.1) as the two
// lints do, and returns the findings of those in run: revokedCertificates,
// when present, is not an empty SEQUENCE; no entry's crlEntryExtensions is
// an empty SEQUENCE. A CRL it cannot read is a fatal finding of each.
func emptySequences(der []byte, run map[string]bool) []string {
	found := func(name string, status lint.LintStatus, format string, args ...any) []string {
		if !run[name] {
			return nil
		}
		return []string{finding(name, &lint.LintResult{Status: status, Details: fmt.Sprintf(format, args...)})}
	}
	fatal := func() []string {
		return append(found(lintEmptyRevoked, lint.Fatal, "Failed to decode CRL"), found(lintEmptyEntryExt, lint.Fatal, "Failed to decode CRL")...)
	}
	input := cryptobyte.String(der)
	var list, tbs cryptobyte.String
	if !input.ReadASN1(&list, asn1.SEQUENCE) || !list.ReadASN1(&tbs, asn1.SEQUENCE) {
		return fatal()
	}
	// version (optional), signature, issuer, thisUpdate, nextUpdate (optional)
	if !tbs.SkipOptionalASN1(asn1.INTEGER) || !tbs.SkipASN1(asn1.SEQUENCE) || !tbs.SkipASN1(asn1.SEQUENCE) || !skipTime(&tbs) {
		return fatal()
	}
	if tbs.PeekASN1Tag(asn1.UTCTime) || tbs.PeekASN1Tag(asn1.GeneralizedTime) {
		skipTime(&tbs)
	}
	if !tbs.PeekASN1Tag(asn1.SEQUENCE) {
		return nil // no revokedCertificates
	}
	var revoked cryptobyte.String
	if !tbs.ReadASN1(&revoked, asn1.SEQUENCE) {
		return fatal()
	}
	if revoked.Empty() {
		return found(lintEmptyRevoked, lint.Error, "CRL contains an empty revokedCertificates element")
	}
	for !revoked.Empty() {
		var entry cryptobyte.String
		serial := new(big.Int)
		if !revoked.ReadASN1(&entry, asn1.SEQUENCE) || !entry.ReadASN1Integer(serial) || !skipTime(&entry) {
			return fatal()
		}
		if entry.Empty() {
			continue
		}
		var ext cryptobyte.String
		var tag asn1.Tag
		if !entry.ReadAnyASN1(&ext, &tag) {
			return fatal()
		}
		if tag == asn1.SEQUENCE && ext.Empty() {
			return found(lintEmptyEntryExt, lint.Error, "The crlEntryExtensions field for CRL entry %x is an empty SEQUENCE (forbidden)", serial)
		}
	}
	return nil
}

// skipTime skips a UTCTime or GeneralizedTime.
func skipTime(s *cryptobyte.String) bool {
	if s.PeekASN1Tag(asn1.GeneralizedTime) {
		return s.SkipASN1(asn1.GeneralizedTime)
	}
	return s.SkipASN1(asn1.UTCTime)
}
