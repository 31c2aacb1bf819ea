package status

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// single is what the responder needs of a pre-signed response: the one
// SingleResponse's serial, status and times (RFC 6960 §4.2.1).
type single struct {
	serial                 []byte
	outcome                outcome
	thisUpdate, nextUpdate time.Time
}

// readSingle reads a BasicOCSPResponse's first SingleResponse without
// parsing the certificates it carries or checking its signature: the
// response is the CA's, from the store, and is served byte for byte.
// Reading it costs a few microseconds, where x/crypto/ocsp's full parse
// costs a hundred: it matters when a responder preloads millions.
func readSingle(der []byte) (single, error) {
	var s single
	in := cryptobyte.String(der)
	var resp, rb, basic, tbs, responses, one, certID, serial cryptobyte.String
	var status int
	var skipped cryptobyte.String
	var tag cbasn1.Tag
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !resp.ReadASN1Enum(&status) || status != 0 ||
		!resp.ReadASN1(&rb, cbasn1.Tag(0).Constructed().ContextSpecific()) || !rb.ReadASN1(&rb, cbasn1.SEQUENCE) ||
		!rb.SkipASN1(cbasn1.OBJECT_IDENTIFIER) || !rb.ReadASN1(&basic, cbasn1.OCTET_STRING) ||
		!basic.ReadASN1(&basic, cbasn1.SEQUENCE) || !basic.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return s, errors.New("not a successful basic OCSP response")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.ReadAnyASN1(&skipped, &tag) || // responderID: byName [1] or byKey [2]
		!tbs.SkipASN1(cbasn1.GeneralizedTime) || // producedAt
		!tbs.ReadASN1(&responses, cbasn1.SEQUENCE) || !responses.ReadASN1(&one, cbasn1.SEQUENCE) {
		return s, errors.New("no SingleResponse")
	}
	if !one.ReadASN1(&certID, cbasn1.SEQUENCE) || !certID.SkipASN1(cbasn1.SEQUENCE) ||
		!certID.SkipASN1(cbasn1.OCTET_STRING) || !certID.SkipASN1(cbasn1.OCTET_STRING) ||
		!certID.ReadASN1(&serial, cbasn1.INTEGER) {
		return s, errors.New("bad CertID")
	}
	sn, err := positiveSerial(serial)
	if err != nil {
		return s, err
	}
	s.serial = sn
	if !one.ReadAnyASN1(&skipped, &tag) {
		return s, errors.New("no certStatus")
	}
	switch tag {
	case cbasn1.Tag(0).ContextSpecific():
		s.outcome = outcomeGood
	case cbasn1.Tag(1).Constructed().ContextSpecific():
		s.outcome = outcomeRevoked
	case cbasn1.Tag(2).ContextSpecific():
		s.outcome = outcomeUnknown
	default:
		return s, fmt.Errorf("certStatus tag %#x", uint8(tag))
	}
	if !one.ReadASN1GeneralizedTime(&s.thisUpdate) {
		return s, errors.New("bad thisUpdate")
	}
	var next cryptobyte.String
	var hasNext bool
	if !one.ReadOptionalASN1(&next, &hasNext, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return s, errors.New("bad nextUpdate")
	}
	if !hasNext || !next.ReadASN1GeneralizedTime(&s.nextUpdate) {
		// RFC 5019 §2.2.4: pre-produced responses carry nextUpdate.
		return s, errors.New("no nextUpdate")
	}
	return s, nil
}
